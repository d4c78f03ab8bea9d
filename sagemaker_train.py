"""SageMaker training-job entry point (README, "SageMaker training jobs"): runs
``kerassev reproduce <paper>`` with the job's channels, output folders and hyper-parameters."""

import sys

from kerassev.sagemaker import main

if __name__ == "__main__":
    sys.exit(main())
