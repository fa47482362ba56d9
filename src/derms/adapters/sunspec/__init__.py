"""SunSpec Modbus master on pymodbus, with point maps from pysunspec2's model definitions."""
