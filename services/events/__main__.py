from services.events.service import main

main()
