"""`python -m training.train_t2i`: the name the first recipes were published under; the loop is
`training.train`, which trains any task its config names."""

from .train import build_parser, main, make_accelerator, train  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
