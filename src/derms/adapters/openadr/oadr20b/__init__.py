"""OpenADR 2.0b Profile B: vocabulary, typed messages, XML codec, VTN and VEN."""
