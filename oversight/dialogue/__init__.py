"""The dialogue types every protocol and judge works with: transcripts, turns and verdicts
(transcript.py), the call context that is the only way to reach a model and records every
call (context.py), the prompt templates (prompts.py) and the word limit (words.py).

They sit above model/ and below protocol/ and judge/, which both build on them; nothing here
imports a protocol, a judge, the engine or scoring.
"""
