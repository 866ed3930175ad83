"""Streamlit dashboard for decision-makers; reads run directories, calls advisor for what-if."""
