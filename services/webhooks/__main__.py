from services.webhooks.service import main

main()
