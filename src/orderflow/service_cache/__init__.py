"""The cache as each service uses it, on top of the library in `orderflow.cache`.

- `facade`: `ServiceCache`, a service's reads (obeying its switch) and its after-commit writes
  (write-through or invalidation), with the near cache of popular entries;
- `upkeep`, `journal`, `journal_rows`: what each write owes the cache, journalled in the write's
  own transaction and repaired from there when a process dies or Redis fails (rule 9);
- `modes`, `admin`: the run-time switch (`PUT /admin/cache`) and its endpoint;
- `broadcast`: Redis pub/sub with acknowledgements, which carries near-cache drops, switch
  changes and trace gathering to every process;
- `tracing`: the spans of cache reads and writes.

`kit/` keeps the web and database plumbing; the library in `orderflow.cache` imports neither.
"""
