//! A small DER reader: just enough X.509 to find the subject CommonName and the
//! subjectAltName `otherName` entries that carry Receptor node IDs.
//!
//! Chain and signature checks are left to webpki; this module only extracts names
//! from certificates that webpki (or, in insecure mode, the caller) has accepted.
//! Decoding follows Go's `encoding/asn1` where Receptor depends on it: any string
//! type that Go decodes into a `string` is accepted (see [`decode_string`]).

use std::fmt;

/// Why a certificate could not be decoded far enough to read its names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DerError(&'static str);

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DerError {}

/// Tag class bits of an identifier octet.
const CLASS_UNIVERSAL: u8 = 0x00;
const CLASS_CONTEXT: u8 = 0x80;

/// Universal tag numbers used below.
const TAG_BOOLEAN: u32 = 1;
const TAG_OCTET_STRING: u32 = 4;
const TAG_OID: u32 = 6;
const TAG_SEQUENCE: u32 = 16;
const TAG_SET: u32 = 17;

/// DER content of OID 2.5.29.17 (subjectAltName).
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// DER content of OID 2.5.4.3 (commonName).
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// One decoded tag-length-value element.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    /// Class bits (`0x00` universal, `0x40` application, `0x80` context, `0xc0` private).
    pub(crate) class: u8,
    /// Whether the constructed bit is set.
    pub(crate) constructed: bool,
    /// Tag number (high-tag-number form supported).
    pub(crate) number: u32,
    /// Content octets.
    pub(crate) contents: &'a [u8],
}

impl Tlv<'_> {
    fn is_universal(&self, number: u32) -> bool {
        self.class == CLASS_UNIVERSAL && self.number == number
    }
}

/// Reads one element from the front of `input` and advances it.
pub(crate) fn read_tlv<'a>(input: &mut &'a [u8]) -> Result<Tlv<'a>, DerError> {
    let data: &'a [u8] = input;
    let (&first, mut rest) = data
        .split_first()
        .ok_or(DerError("truncated DER element"))?;
    let class = first & 0xc0;
    let constructed = first & 0x20 != 0;
    let mut number = u32::from(first & 0x1f);
    if number == 0x1f {
        // High-tag-number form: base-128 digits, top bit set on all but the last.
        number = 0;
        loop {
            let (&b, r) = rest.split_first().ok_or(DerError("truncated DER tag"))?;
            rest = r;
            if number > (u32::MAX >> 7) {
                return Err(DerError("DER tag number too large"));
            }
            number = (number << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let (&len_byte, r) = rest.split_first().ok_or(DerError("truncated DER length"))?;
    rest = r;
    let len = if len_byte < 0x80 {
        usize::from(len_byte)
    } else {
        let n = usize::from(len_byte & 0x7f);
        if n == 0 {
            return Err(DerError("indefinite length is not DER"));
        }
        if n > 4 {
            return Err(DerError("DER length too large"));
        }
        let (len_bytes, r) = split_at_checked(rest, n).ok_or(DerError("truncated DER length"))?;
        rest = r;
        len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (contents, r) =
        split_at_checked(rest, len).ok_or(DerError("DER element overruns its container"))?;
    *input = r;
    Ok(Tlv {
        class,
        constructed,
        number,
        contents,
    })
}

fn split_at_checked(data: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (n <= data.len()).then(|| data.split_at(n))
}

/// Reads one element and requires it to be a universal SEQUENCE.
fn read_sequence<'a>(input: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], DerError> {
    let tlv = read_tlv(input)?;
    if !tlv.is_universal(TAG_SEQUENCE) || !tlv.constructed {
        return Err(DerError(what));
    }
    Ok(tlv.contents)
}

/// The parts of a certificate's TBSCertificate that name extraction needs.
struct TbsNames<'a> {
    /// Content octets of the subject Name (a SEQUENCE OF RelativeDistinguishedName).
    subject: &'a [u8],
    /// Content octets of the extensions SEQUENCE, when present.
    extensions: Option<&'a [u8]>,
}

/// Walks `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }`.
fn tbs_names(cert_der: &[u8]) -> Result<TbsNames<'_>, DerError> {
    let mut input = cert_der;
    let mut cert = read_sequence(&mut input, "certificate is not a SEQUENCE")?;
    let mut tbs = read_sequence(&mut cert, "tbsCertificate is not a SEQUENCE")?;
    let mut next = read_tlv(&mut tbs)?;
    if next.class == CLASS_CONTEXT && next.number == 0 {
        // [0] EXPLICIT Version; the serial number follows.
        next = read_tlv(&mut tbs)?;
    }
    let _serial = next;
    let _signature_alg = read_sequence(&mut tbs, "bad signature algorithm")?;
    let _issuer = read_sequence(&mut tbs, "bad issuer name")?;
    let _validity = read_sequence(&mut tbs, "bad validity")?;
    let subject = read_sequence(&mut tbs, "bad subject name")?;
    let _spki = read_sequence(&mut tbs, "bad subjectPublicKeyInfo")?;
    let mut extensions = None;
    while !tbs.is_empty() {
        let field = read_tlv(&mut tbs)?;
        // [1] issuerUniqueID and [2] subjectUniqueID are skipped; [3] holds the extensions.
        if field.class == CLASS_CONTEXT && field.number == 3 {
            let mut wrapped = field.contents;
            extensions = Some(read_sequence(&mut wrapped, "bad extensions")?);
        }
    }
    Ok(TbsNames {
        subject,
        extensions,
    })
}

/// Returns the subject CommonName of a certificate, or `None` when it has none.
///
/// Like Go's `pkix.Name`, the last CN attribute wins when there are several.
pub(crate) fn subject_common_name(cert_der: &[u8]) -> Result<Option<String>, DerError> {
    let mut rdns = tbs_names(cert_der)?.subject;
    let mut common_name = None;
    while !rdns.is_empty() {
        let rdn = read_tlv(&mut rdns)?;
        if !rdn.is_universal(TAG_SET) {
            return Err(DerError("name component is not a SET"));
        }
        let mut atvs = rdn.contents;
        while !atvs.is_empty() {
            let mut atv = read_sequence(&mut atvs, "name attribute is not a SEQUENCE")?;
            let oid = read_tlv(&mut atv)?;
            if !oid.is_universal(TAG_OID) {
                return Err(DerError("name attribute type is not an OID"));
            }
            let value = read_tlv(&mut atv)?;
            if oid.contents == OID_COMMON_NAME {
                common_name = Some(decode_string(&value)?);
            }
        }
    }
    Ok(common_name)
}

/// Returns every `otherName` in the certificate's subjectAltName whose type-id
/// content octets equal `type_id`, decoded as text.
///
/// Mirrors Go receptor's `utils.ReceptorNames`: every `[0]` GeneralName must decode
/// as an otherName, and a matching value that is not a string is an error.
pub(crate) fn san_other_names(cert_der: &[u8], type_id: &[u8]) -> Result<Vec<String>, DerError> {
    let mut names = Vec::new();
    let Some(mut extensions) = tbs_names(cert_der)?.extensions else {
        return Ok(names);
    };
    while !extensions.is_empty() {
        let mut ext = read_sequence(&mut extensions, "extension is not a SEQUENCE")?;
        let oid = read_tlv(&mut ext)?;
        if !oid.is_universal(TAG_OID) {
            return Err(DerError("extension id is not an OID"));
        }
        let mut value = read_tlv(&mut ext)?;
        if value.is_universal(TAG_BOOLEAN) {
            // Optional `critical BOOLEAN`.
            value = read_tlv(&mut ext)?;
        }
        if oid.contents != OID_SUBJECT_ALT_NAME {
            continue;
        }
        if !value.is_universal(TAG_OCTET_STRING) {
            return Err(DerError("extension value is not an OCTET STRING"));
        }
        names.extend(san_value_other_names(value.contents, type_id)?);
    }
    Ok(names)
}

/// [`san_other_names`] for the value of one subjectAltName extension (the content of its
/// OCTET STRING), as found in a certificate or a certificate request.
pub(crate) fn san_value_other_names(
    mut san: &[u8],
    type_id: &[u8],
) -> Result<Vec<String>, DerError> {
    let mut names = Vec::new();
    let mut general_names = read_sequence(&mut san, "subjectAltName is not a SEQUENCE")?;
    while !general_names.is_empty() {
        let name = read_tlv(&mut general_names)?;
        if name.number != 0 {
            continue;
        }
        if name.class != CLASS_CONTEXT || !name.constructed {
            return Err(DerError("malformed otherName"));
        }
        let mut other = name.contents;
        let id = read_tlv(&mut other)?;
        if !id.is_universal(TAG_OID) {
            return Err(DerError("otherName type-id is not an OID"));
        }
        // Go decodes the value into an untagged RawValue, so any tag is accepted here.
        let wrapper = read_tlv(&mut other)?;
        if id.contents == type_id {
            let mut inner = wrapper.contents;
            names.push(decode_string(&read_tlv(&mut inner)?)?);
        }
    }
    Ok(names)
}

/// Decodes an ASN.1 string element the way Go's `asn1.Unmarshal` into a `string` does.
///
/// Accepted: UTF8String (12), NumericString (18), PrintableString (19), T61String (20),
/// IA5String (22), GeneralString (27) and BMPString (30), with Go's character checks.
/// T61String and GeneralString are raw bytes in Go; invalid UTF-8 is replaced here.
pub(crate) fn decode_string(tlv: &Tlv<'_>) -> Result<String, DerError> {
    if tlv.class != CLASS_UNIVERSAL || tlv.constructed {
        return Err(DerError("value is not a primitive universal string"));
    }
    let bytes = tlv.contents;
    let ascii = |ok: fn(u8) -> bool, msg: &'static str| -> Result<String, DerError> {
        if bytes.iter().all(|&b| ok(b)) {
            // Every accepted byte is ASCII, hence valid UTF-8.
            Ok(bytes.iter().map(|&b| char::from(b)).collect())
        } else {
            Err(DerError(msg))
        }
    };
    match tlv.number {
        12 => {
            String::from_utf8(bytes.to_vec()).map_err(|_| DerError("UTF8String is not valid UTF-8"))
        }
        18 => ascii(
            |b| b.is_ascii_digit() || b == b' ',
            "NumericString contains invalid characters",
        ),
        19 => ascii(is_printable, "PrintableString contains invalid characters"),
        20 | 27 => Ok(String::from_utf8_lossy(bytes).into_owned()),
        22 => ascii(|b| b.is_ascii(), "IA5String contains non-ASCII characters"),
        30 => decode_bmp(bytes),
        _ => Err(DerError("value is not a string type")),
    }
}

/// PrintableString characters, plus `*` and `&` which Go tolerates for compatibility.
fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?*&".contains(&b)
}

/// BMPString: UCS-2 big-endian; Go strips one trailing NUL character.
fn decode_bmp(bytes: &[u8]) -> Result<String, DerError> {
    if bytes.len() % 2 == 1 {
        return Err(DerError("BMPString has odd length"));
    }
    let mut units: Vec<u16> = bytes
        .chunks_exact(2)
        .filter_map(|c| c.try_into().ok().map(u16::from_be_bytes))
        .collect();
    if units.last() == Some(&0) {
        units.pop();
    }
    String::from_utf16(&units).map_err(|_| DerError("BMPString is not valid UTF-16"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(bytes: &[u8]) -> Tlv<'_> {
        let mut input = bytes;
        read_tlv(&mut input).unwrap()
    }

    #[test]
    fn reads_long_lengths_and_high_tags() {
        let mut data = vec![0x04, 0x81, 0x80];
        data.extend([7u8; 0x80]);
        let t = tlv(&data);
        assert_eq!((t.number, t.contents.len()), (4, 0x80));
        let t = tlv(&[0x9f, 0x81, 0x00, 0x01, 0xaa]);
        assert_eq!(
            (t.class, t.number, t.contents),
            (CLASS_CONTEXT, 128, &[0xaa][..])
        );
    }

    #[test]
    fn rejects_truncated_and_indefinite() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x00],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x30, 0x82, 0x01],
        ] {
            let mut input = bad;
            assert!(read_tlv(&mut input).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn decodes_go_string_types() {
        assert_eq!(
            decode_string(&tlv(b"\x0c\x03n\xc3\xa9")).unwrap(),
            "n\u{e9}"
        );
        assert_eq!(decode_string(&tlv(b"\x13\x04ab*&")).unwrap(), "ab*&");
        assert!(decode_string(&tlv(b"\x13\x01@")).is_err());
        assert_eq!(decode_string(&tlv(b"\x16\x02a@")).unwrap(), "a@");
        assert!(decode_string(&tlv(b"\x16\x01\x80")).is_err());
        assert_eq!(decode_string(&tlv(b"\x12\x031 2")).unwrap(), "1 2");
        assert!(decode_string(&tlv(b"\x12\x01a")).is_err());
        assert_eq!(
            decode_string(&tlv(b"\x1e\x06\x00h\x00i\x00\x00")).unwrap(),
            "hi"
        );
        assert!(decode_string(&tlv(b"\x1e\x01\x00")).is_err());
        assert_eq!(decode_string(&tlv(b"\x14\x02ok")).unwrap(), "ok");
        assert!(decode_string(&tlv(b"\x02\x01\x01")).is_err());
        assert!(decode_string(&tlv(b"\x80\x01a")).is_err());
    }
}
