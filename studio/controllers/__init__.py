"""Controllers: the studio's processes, requests, state and persistence; views talk only to these."""
