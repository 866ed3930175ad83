"""One module per dashboard page; ui/app.py lists them in st.navigation."""
