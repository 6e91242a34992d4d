"""`storyline web`: the server-rendered web app, its JSON API and Atom feeds."""
