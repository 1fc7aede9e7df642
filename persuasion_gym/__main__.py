import sys

from persuasion_gym.cli.main import main

sys.exit(main())
