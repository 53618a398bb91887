"""Input and output: streaming readers and writers, file formats, atomic and resumable output.

Nothing here knows about models or tasks: tables of rows come in, tables of rows go out.
"""
