"""The dashboard's side of FusionLens: everything the Streamlit pages use that is not model code.

``core`` is the model side and never imports this package; this package reads
what ``core`` produced (run bundles, stored explanations, projections) through
``core``'s public API. Modules, by job:

Plain Python (no streamlit, tested without a server):
- :mod:`ui.stamps`: cache keys of run files (a rebuilt run is read again);
- :mod:`ui.queries`: page queries over run files (the predictions view, its filters,
  one sample across runs, the gallery, split counts, projections joined with predictions);
- :mod:`ui.precomputed`: what is stored for a run (explanations, projections) and the
  build's explanation plan;
- :mod:`ui.commands`: the shell commands a page shows to fill what it lacks;
- :mod:`ui.models`: a bundle's model, rebuilt under the dashboard's rules;
- :mod:`ui.tables`: tables formatted for the pages (best cells, LaTeX, the share table's layout);
- :mod:`ui.exports`: a selection of samples as a table and as spreadsheet-safe CSV;
- :mod:`ui.figures`: Plotly figure builders, one module per page area.
- :mod:`ui.saved_views`: saved views and the presentation, stored and checked in the runs root.

Streamlit (the pages' components):
- :mod:`ui.context`: the pages, the URL keys and the shared context of a script run;
- :mod:`ui.sidebar`: the shared pickers (experiment, run, second run);
- :mod:`ui.loaders`: every cached read (``st.cache_data`` / ``st.cache_resource``), the one cache layer;
- :mod:`ui.widgets`: messages, page headers, class filters, figure boxes, row selection, a selection's
  CSV download;
- :mod:`ui.viewers`: how one sample of a modality kind is shown with its contributions.
- :mod:`ui.view_panel`: the sidebar's "Saved views" panel and opening a saved view;
- :mod:`ui.presentation`: presentation mode (hidden controls, larger text and figures, presenter bar).
"""
