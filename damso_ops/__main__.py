from damso_ops.cli import main

main()
