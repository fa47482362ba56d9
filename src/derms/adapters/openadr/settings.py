"""Settings of the OpenADR adapters (environment prefix ``DERMS_OPENADR_``)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class VenProvision(BaseModel):
    """A VEN provisioned out of band (name, TLS fingerprint, groups, party)."""

    ven_name: str
    fingerprint: str | None = None
    ven_id: str | None = None
    group_ids: list[str] = Field(default_factory=list)
    party_id: str | None = None
    resource_ids: list[str] = Field(default_factory=list)


class Oadr3Client(BaseModel):
    """An OAuth2 client of the 3.0.1 VTN: ``BL`` (business logic) or a ``VEN`` bound to venName."""

    client_id: str
    client_secret: str
    role: str = Field(pattern="^(BL|VEN)$")
    ven_name: str | None = None


class OpenAdrSettings(BaseSettings):
    """2.0b VTN settings. Port 8080 (HTTP) by default; tests pass ``port=0``."""

    model_config = SettingsConfigDict(env_prefix="DERMS_OPENADR_")

    vtn_id: str = "DERMS_VTN"
    host: str = "127.0.0.1"
    port: int = 8080
    market_context: str = "http://derms.example/openadr/programs/default"
    poll_freq_s: float = Field(10.0, gt=0)
    report_granularity_s: float = Field(10.0, gt=0)
    schema_path: str | None = None
    """``oadr_20b.xsd``; when found, every incoming and outgoing payload is validated."""
    validate_outgoing: bool = False
    open_enrolment: bool = True
    """Accept VENs that were not provisioned (no TLS fingerprint check for them)."""
    vens: list[VenProvision] = Field(default_factory=list)
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    tls_ca_certs: str | None = None
    sign_messages: bool = False
    """Sign outgoing payloads with XML-DSig (2.0b security, section 10 of the profile)."""
    require_signatures: bool = False
    """Refuse unsigned payloads (463). Signed payloads are always verified."""
    dispatch_resolution_kw: float = Field(0.001, gt=0)
    status_tick_s: float = Field(1.0, gt=0)
    oadr3_enabled: bool = False
    """Also serve the OpenADR 3.0.1 VTN (REST/JSON) on ``oadr3_port``."""
    oadr3_port: int = 8081
    oadr3_clients: list[Oadr3Client] = Field(default_factory=list)
    oadr3_program_name: str = "derms-dispatch"
    """3.0.1 program that carries platform commands to 3.0.1 VENs (created on first use)."""
