"""OpenADR adapters: a native 2.0b VTN and VEN (XML over simple HTTP) and a 3.x VTN (REST/JSON)."""
