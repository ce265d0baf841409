from stageline.cli.main import main

main()
