"""`python -m lava_runtime report RUN_DIR`: one self-contained HTML page about a trained run.

- build.py  the stages (through lava_runtime.pipeline) and the command
- spikes.py  `report NET --spikes EVENTS.npy`: an exported network on given input spikes
- cache.py  reuse of unchanged stages;  page.py  the page's content;  html.py  rendering
- profiles.py  the profile set (`--profiles all|LIST`)
"""
