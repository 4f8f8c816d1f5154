"""`python -m carbon_pipeline.watttime.simulator`: serve the simulated WattTime API until Ctrl-C."""

import sys

from carbon_pipeline.watttime.simulator.server import main

sys.exit(main())
