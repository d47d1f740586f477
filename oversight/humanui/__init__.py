"""Human judges: a local web app where people judge a run's episodes (`oversight judge-ui`).

run.py lists what a person can judge in a finished run and in what order; episode.py
carries one episode (the agents' turns through the run's models, the human's questions,
the verdict journaled as a `human/NAME` judgments row); pages.py renders the HTML;
server.py holds the routes, guard.py the safety checks around them, serve.py the server
process (the run lock, uvicorn, sealing). The web framework (Starlette, uvicorn) is the
optional `ui` extra, imported only when the server starts.
"""
