from pangeohub.cli import main

main()
