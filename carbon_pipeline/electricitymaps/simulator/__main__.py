"""`python -m carbon_pipeline.electricitymaps.simulator`: serve the simulated Electricity Maps API until Ctrl-C."""

import sys

from carbon_pipeline.electricitymaps.simulator.server import main

sys.exit(main())
