from services.identity.service import main

main()
