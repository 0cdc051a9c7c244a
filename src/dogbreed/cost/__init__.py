"""`dogbreed cost`: what a pipeline run, the endpoint floor and a million predictions cost for the
chosen template parameters (template.yaml defaults + samconfig.toml environments), from the one
price table in `prices.json`."""
