from custodiet.cli import main

main()
