"""`python -m harness.coursecheck [ROOT]`."""
import sys

from harness.coursecheck import main

sys.exit(main())
