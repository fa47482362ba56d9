"""OpenADR 3.0.1 VTN (REST/JSON), after the Alliance's OpenAPI definition ``openadr3.yaml`` 3.0.1."""
