"""Raw CSV exports into bronze, safely: file-level problems become one clear message, never a
traceback, and every record in the file reaches bronze, clean or marked malformed with its raw
text.

`settle` takes a private copy of a file once nothing writes to it; `profile` counts what the
copy holds (hash, lines, records, header); `reader` loads it with DuckDB's strict reader into a
staging table, every row numbered with its physical line; `incremental` brings a bronze table up
to date (nothing, the appended rows, or a full load); `state` types what the table records
about the file it holds; `errors` has the one error a file that cannot be used raises.
"""
