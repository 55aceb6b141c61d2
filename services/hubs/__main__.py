from services.hubs.service import main

main()
