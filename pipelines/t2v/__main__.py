"""`python -m pipelines.t2v`: see `pipelines.t2v.cli`."""

from .cli import main

raise SystemExit(main())
