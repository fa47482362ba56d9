// An independent OCPP charge point for derms interop tests, on ocpp-rpc in strictMode: every
// call and response in both directions is validated against the official OCPP JSON schemas.
//
// Usage: node charge_point.js <endpoint> <identity> <ocpp1.6|ocpp2.0.1> [password]
// It boots, reports status, starts a transaction on connector/EVSE 1, stores the charging
// profiles it is sent (OCPP 1.6 3.13 / 2.0.1 K01), answers GetCompositeSchedule from them and
// draws the composite limit, reporting it in MeterValues. One JSON line per event on stdout.
'use strict';
const { RPCClient } = require('ocpp-rpc');

const [endpoint, identity, protocol, password] = process.argv.slice(2);
const V16 = protocol === 'ocpp1.6';
const VOLTS = 230;
const EV_MAX_W = 11000;
const profiles = []; // {evse, profile}
let txId = null;
let txStart = null;

const out = (event, data) => process.stdout.write(JSON.stringify({ event, ...data }) + '\n');
const nowIso = () => new Date().toISOString();

const cli = new RPCClient({
  endpoint, identity, protocols: [protocol], strictMode: true, password: password || undefined,
  reconnect: false,
});

function schedulesOf(p) { return V16 ? [p.chargingSchedule] : p.chargingSchedule; }
function purposeOf(p) { return p.chargingProfilePurpose; }
function isStationMax(p) { return /Max/.test(purposeOf(p)); }

function scheduleStart(p, s, t) {
  if (p.chargingProfileKind === 'Recurring') {
    const period = p.recurrencyKind === 'Weekly' ? 7 * 86400e3 : 86400e3;
    const first = Date.parse(s.startSchedule);
    return first + Math.floor((t - first) / period) * period;
  }
  if (s.startSchedule) return Date.parse(s.startSchedule);
  return txStart ?? t;
}

// The limit a profile imposes at time t, in watts, or null where it does not apply.
function limitAt(p, t) {
  if (p.validFrom && t < Date.parse(p.validFrom)) return null;
  if (p.validTo && t >= Date.parse(p.validTo)) return null;
  const s = schedulesOf(p)[0];
  const start = scheduleStart(p, s, t);
  const offset = (t - start) / 1000;
  if (offset < 0 || (s.duration != null && offset >= s.duration)) return null;
  let period = null;
  for (const sp of s.chargingSchedulePeriod) if (sp.startPeriod <= offset) period = sp;
  if (period == null) return null;
  const phases = period.numberPhases ?? 3;
  return s.chargingRateUnit === 'A' ? period.limit * VOLTS * phases : period.limit;
}

// Highest stack level among matching profiles that applies at t (OCPP 1.6 3.13.2 stacking).
function stackLimit(candidates, t) {
  const sorted = [...candidates].sort((a, b) => b.profile.stackLevel - a.profile.stackLevel);
  for (const c of sorted) {
    const limit = limitAt(c.profile, t);
    if (limit != null) return limit;
  }
  return null;
}

function compositeAt(evse, t) {
  const max = stackLimit(profiles.filter(c => isStationMax(c.profile)), t);
  const tx = txId != null ? profiles.filter(c => purposeOf(c.profile) === 'TxProfile' && c.evse === evse) : [];
  let limit = stackLimit(tx, t);
  if (limit == null) {
    limit = stackLimit(profiles.filter(c => purposeOf(c.profile) === 'TxDefaultProfile' && c.evse === evse), t);
  }
  if (limit == null) {
    limit = stackLimit(profiles.filter(c => purposeOf(c.profile) === 'TxDefaultProfile' && c.evse === 0), t);
  }
  const limits = [max, limit].filter(x => x != null);
  return limits.length ? Math.min(...limits) : null;
}

function composite(evse, duration, unit) {
  const t0 = Math.floor(Date.now() / 1000) * 1000;
  const cuts = new Set([0]);
  for (const { profile } of profiles) {
    const s = schedulesOf(profile)[0];
    const start = scheduleStart(profile, s, t0);
    for (const sp of s.chargingSchedulePeriod) {
      const at = Math.round((start - t0) / 1000) + sp.startPeriod;
      if (at > 0 && at < duration) cuts.add(at);
    }
    if (s.duration != null) {
      const end = Math.round((start - t0) / 1000) + s.duration;
      if (end > 0 && end < duration) cuts.add(end);
    }
  }
  const periods = [];
  for (const at of [...cuts].sort((a, b) => a - b)) {
    let w = compositeAt(evse, t0 + at * 1000);
    if (w == null) w = EV_MAX_W;
    const limit = unit === 'A' ? Math.round((w / VOLTS / 3) * 10) / 10 : Math.round(w);
    if (!periods.length || periods[periods.length - 1].limit !== limit) {
      periods.push(unit === 'A' ? { startPeriod: at, limit, numberPhases: 3 } : { startPeriod: at, limit });
    }
  }
  return { start: new Date(t0).toISOString(), periods };
}

async function reportMeter(evse) {
  const w = Math.min(compositeAt(evse, Date.now()) ?? EV_MAX_W, EV_MAX_W);
  const timestamp = nowIso();
  if (V16) {
    await cli.call('MeterValues', {
      connectorId: evse, transactionId: txId ?? undefined,
      meterValue: [{ timestamp, sampledValue: [
        { value: String(w), measurand: 'Power.Active.Import', unit: 'W' },
        { value: '231.5', measurand: 'Voltage', unit: 'V', phase: 'L1-N' },
      ] }],
    });
  } else {
    await cli.call('MeterValues', {
      evseId: evse,
      meterValue: [{ timestamp, sampledValue: [
        { value: w, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W' } },
        { value: 231.5, measurand: 'Voltage', phase: 'L1-N', unitOfMeasure: { unit: 'V' } },
      ] }],
    });
  }
  out('meter', { evse, w });
}

cli.handle('SetChargingProfile', ({ params }) => {
  const evse = V16 ? params.connectorId : params.evseId;
  const profile = V16 ? params.csChargingProfiles : params.chargingProfile;
  const id = V16 ? profile.chargingProfileId : profile.id;
  if (purposeOf(profile) === 'TxProfile' && (txId == null || profile.transactionId !== txId)) {
    out('profile-rejected', { id, reason: 'no such transaction' });
    return V16 ? { status: 'Rejected' } : { status: 'Rejected', statusInfo: { reasonCode: 'TxNotFound' } };
  }
  // a new profile replaces one with the same id, or the same purpose and stack level on the same EVSE
  for (let i = profiles.length - 1; i >= 0; i--) {
    const other = profiles[i].profile;
    const otherId = V16 ? other.chargingProfileId : other.id;
    if (otherId === id || (profiles[i].evse === evse && purposeOf(other) === purposeOf(profile) &&
        other.stackLevel === profile.stackLevel)) profiles.splice(i, 1);
  }
  profiles.push({ evse, profile });
  out('profile', { evse, id, purpose: purposeOf(profile), stackLevel: profile.stackLevel });
  setImmediate(() => reportMeter(1).catch(err => out('error', { message: String(err) })));
  return { status: 'Accepted' };
});

cli.handle('ClearChargingProfile', ({ params }) => {
  const criteria = V16 ? params : (params.chargingProfileCriteria ?? {});
  const byId = V16 ? params.id : params.chargingProfileId;
  const evse = V16 ? params.connectorId : criteria.evseId;
  const before = profiles.length;
  for (let i = profiles.length - 1; i >= 0; i--) {
    const p = profiles[i].profile;
    const pid = V16 ? p.chargingProfileId : p.id;
    const match = byId != null ? pid === byId :
      (evse == null || profiles[i].evse === evse) &&
      (criteria.chargingProfilePurpose == null || purposeOf(p) === criteria.chargingProfilePurpose) &&
      (criteria.stackLevel == null || p.stackLevel === criteria.stackLevel);
    if (match) profiles.splice(i, 1);
  }
  out('cleared', { removed: before - profiles.length });
  return { status: before > profiles.length ? 'Accepted' : 'Unknown' };
});

cli.handle('GetCompositeSchedule', ({ params }) => {
  const evse = V16 ? params.connectorId : params.evseId;
  const unit = params.chargingRateUnit ?? 'W';
  const { start, periods } = composite(evse, params.duration, unit);
  out('composite', { evse, periods });
  if (V16) {
    return { status: 'Accepted', connectorId: evse, scheduleStart: start, chargingSchedule: {
      duration: params.duration, startSchedule: start, chargingRateUnit: unit, chargingSchedulePeriod: periods } };
  }
  return { status: 'Accepted', schedule: {
    evseId: evse, duration: params.duration, scheduleStart: start, chargingRateUnit: unit,
    chargingSchedulePeriod: periods } };
});

async function main() {
  await cli.connect();
  if (V16) {
    const boot = await cli.call('BootNotification', { chargePointVendor: 'ocpp-rpc', chargePointModel: 'interop' });
    out('boot', { status: boot.status });
    await cli.call('Heartbeat', {});
    await cli.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
    const tx = await cli.call('StartTransaction', {
      connectorId: 1, idTag: 'DERMS', meterStart: 0, timestamp: nowIso() });
    txId = tx.transactionId;
    await cli.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging' });
  } else {
    const boot = await cli.call('BootNotification', {
      reason: 'PowerUp', chargingStation: { vendorName: 'ocpp-rpc', model: 'interop' } });
    out('boot', { status: boot.status });
    await cli.call('Heartbeat', {});
    await cli.call('StatusNotification', {
      timestamp: nowIso(), connectorStatus: 'Occupied', evseId: 1, connectorId: 1 });
    txId = 'tx-1';
    await cli.call('TransactionEvent', {
      eventType: 'Started', timestamp: nowIso(), triggerReason: 'CablePluggedIn', seqNo: 0,
      transactionInfo: { transactionId: txId, chargingState: 'Charging' }, evse: { id: 1, connectorId: 1 } });
  }
  txStart = Date.now();
  out('transaction', { txId });
  await reportMeter(1);
  out('ready', {});
}

cli.on('close', ({ code }) => { out('closed', { code }); process.exit(0); });
process.stdin.on('end', () => cli.close({ code: 1000 }));
process.stdin.resume();
main().catch(err => { out('error', { message: String(err), details: err.details }); process.exit(2); });
