// Verifies a lindra course certificate with jose, an implementation lindra
// did not write, and checks the Open Badges 3.0 (VC 2.0) fields a verifier
// relies on; given the issuer's revocation list (a W3C Bitstring Status
// List credential), verifies that too and reads the certificate's bit.
// Usage: node verify.mjs CREDENTIAL_FILE JWKS_FILE [STATUS_LIST_FILE]
// Prints one line; exits 0 if the credential holds, 1 if not, 2 on bad
// usage, 3 if it holds but is revoked.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';

const [credentialFile, jwksFile, statusListFile] = process.argv.slice(2);
if (!credentialFile || !jwksFile) {
  console.error('usage: node verify.mjs CREDENTIAL_FILE JWKS_FILE [STATUS_LIST_FILE]');
  process.exit(2);
}
const jws = readFileSync(credentialFile, 'utf8').trim();
const jwks = createLocalJWKSet(JSON.parse(readFileSync(jwksFile, 'utf8')));

const problems = [];
const need = (ok, what) => { if (!ok) problems.push(what); };

let vc;
try {
  const header = decodeProtectedHeader(jws);
  need(header.alg === 'EdDSA', 'header alg is EdDSA');
  need(typeof header.kid === 'string' && header.kid.length > 0, 'header has a kid');
  need(!('typ' in header), 'header has no typ');
  const { payload } = await compactVerify(jws, jwks, { algorithms: ['EdDSA'] });
  vc = JSON.parse(new TextDecoder().decode(payload));
} catch (e) {
  console.log(`INVALID: ${e.code ?? e.name}: ${e.message}`);
  process.exit(1);
}

const has = (list, item) => Array.isArray(list) && list.includes(item);
need(has(vc['@context'], 'https://www.w3.org/ns/credentials/v2') && vc['@context'][0] === 'https://www.w3.org/ns/credentials/v2',
  '@context starts with the VC 2.0 context');
need(vc['@context'].some((c) => typeof c === 'string' && c.startsWith('https://purl.imsglobal.org/spec/ob/v3p0/context')),
  '@context has the Open Badges 3.0 context');
need(has(vc.type, 'VerifiableCredential') && has(vc.type, 'OpenBadgeCredential'), 'type is OpenBadgeCredential');
need(typeof vc.id === 'string' && /^[a-z][a-z0-9+.-]*:/i.test(vc.id), 'id is a URI');
need(vc.issuer && typeof vc.issuer.id === 'string' && /^[a-z][a-z0-9+.-]*:/i.test(vc.issuer.id), 'issuer.id is a URI');
need(vc.issuer && has(vc.issuer.type, 'Profile') && typeof vc.issuer.name === 'string', 'issuer is a named Profile');
need(typeof vc.validFrom === 'string' && !Number.isNaN(Date.parse(vc.validFrom)), 'validFrom is a date-time');
need(typeof vc.name === 'string' && vc.name.length > 0, 'the credential has a name');
const subject = vc.credentialSubject ?? {};
need(has(subject.type, 'AchievementSubject'), 'credentialSubject is an AchievementSubject');
const achievement = subject.achievement ?? {};
need(typeof achievement.id === 'string' && has(achievement.type, 'Achievement'), 'achievement has an id and type');
need(achievement.achievementType === 'CertificateOfCompletion', 'achievementType is CertificateOfCompletion');
need(typeof achievement.name === 'string' && typeof achievement.criteria?.narrative === 'string',
  'achievement has a name and criteria');
const ids = Array.isArray(subject.identifier) ? subject.identifier : [];
need(ids.some((i) => i.hashed === true && /^sha256\$[0-9a-f]{64}$/.test(i.identityHash) && typeof i.salt === 'string'),
  'the person has a salted hash identifier');
need(Array.isArray(vc.evidence) && vc.evidence.length >= 3 && vc.evidence.every((e) => has(e.type, 'Evidence')),
  'evidence: modules, gatherings, confirmation');
need(vc.credentialStatus?.type === 'BitstringStatusListEntry' && vc.credentialStatus?.statusPurpose === 'revocation',
  'credentialStatus is a revocation BitstringStatusListEntry');
// VC-JWT: the claims mirror the credential.
need(vc.iss === vc.issuer?.id, 'iss mirrors issuer.id');
need(vc.jti === vc.id, 'jti mirrors id');
need(vc.sub === subject.id, 'sub mirrors credentialSubject.id');
need(vc.nbf === Math.floor(Date.parse(vc.validFrom) / 1000), 'nbf mirrors validFrom');

let revoked = false;
if (statusListFile) {
  let list;
  try {
    const { payload } = await compactVerify(readFileSync(statusListFile, 'utf8').trim(), jwks, { algorithms: ['EdDSA'] });
    list = JSON.parse(new TextDecoder().decode(payload));
  } catch (e) {
    console.log(`INVALID: the status list: ${e.code ?? e.name}: ${e.message}`);
    process.exit(1);
  }
  need(has(list.type, 'BitstringStatusListCredential'), 'the status list is a BitstringStatusListCredential');
  need(list.credentialSubject?.type === 'BitstringStatusList' && list.credentialSubject?.statusPurpose === 'revocation',
    'the status list is a revocation BitstringStatusList');
  need(list.iss === vc.iss, 'the status list has the credential\'s issuer');
  const encoded = list.credentialSubject?.encodedList ?? '';
  need(encoded.startsWith('u'), 'encodedList is multibase base64url');
  const bits = gunzipSync(Buffer.from(encoded.slice(1), 'base64url'));
  need(bits.length >= 16384, 'the list holds at least 131,072 bits');
  const index = Number.parseInt(vc.credentialStatus?.statusListIndex ?? '', 10);
  need(Number.isInteger(index) && index >= 0 && index < bits.length * 8, 'statusListIndex is in the list');
  revoked = ((bits[index >> 3] >> (7 - (index & 7))) & 1) === 1;
}

if (problems.length > 0) {
  console.log(`INVALID: ${problems.join('; ')}`);
  process.exit(1);
}
if (revoked) {
  console.log(`REVOKED: ${vc.name} for ${ids.find((i) => i.identityType === 'name')?.identityHash ?? '?'}`);
  process.exit(3);
}
console.log(`VALID: ${vc.name} for ${ids.find((i) => i.identityType === 'name')?.identityHash ?? '?'} from ${vc.issuer.name}`);
