"""ditkit's Gradio app, `python -m apps`: `app` lays it out, `handlers` serve its requests over the
shared models of `models`; `inputs`, `outputs` and `speedup` check, store and time them."""
