from services.referrals.service import main

main()
