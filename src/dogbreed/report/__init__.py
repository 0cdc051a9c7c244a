"""`dogbreed report`: one static HTML page on a model version (collect.py reads the stack, render.py
draws the page)."""
