"""kedacore: the KedaSMS client library under the console (no Streamlit here)."""
