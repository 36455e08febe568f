"""`ganzoo view`: the zoo in a browser, on a CPU (the optional extra pyganzoo[view], which brings gradio).

  catalog.py    what there is to show: the sources of generators (run folders, weights files, compare reports)
                and each entry's model, progress, scores and status; unreadable files as error entries
  drawing.py    what is drawn: grids, latent walks and vector arithmetic through ganzoo.sampling and the
                analyses' own functions, the same z across runs; generators kept while their files are unchanged
  pictures.py   how it is shown: images as data: URIs inside the page, tables, training curves
  app.py        the gradio app: tabs Runs, Sample, Latent walk, Training, Compare
  command.py    the `ganzoo view` subcommand: serve on 127.0.0.1, print the address, stop on Ctrl-C

The viewer only reads: it writes no file anywhere. Gradio's own temporary folder is a private one made at the
start and removed at the end (it stays empty: no image goes through it).
"""
