"""`python -m carbon_pipeline.simulator`: serve the simulated WattTime API until Ctrl-C."""

import sys

from carbon_pipeline.simulator.server import main

sys.exit(main())
