from services.exports.service import main

main()
