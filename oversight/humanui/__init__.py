"""Human judges: a local web app where people judge a run's episodes (`oversight judge-ui`).

run.py lists what a person can judge in a finished run and in what order; episode.py
carries one episode (the agents' turns through the run's models, the human's questions,
the verdict journaled as a `human/NAME` judgments row); pages.py renders the HTML;
server.py is the web app and its safety checks. The web framework (Starlette, uvicorn) is
the optional `ui` extra and is imported only by server.py.
"""
