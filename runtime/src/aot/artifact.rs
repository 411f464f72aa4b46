//! The self-contained artifact (`<name>.xnb`): one file an application loads at run time.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "XENONXNB"
//! 8       4     format version (u32, little-endian) = FORMAT_VERSION
//! 12      4     header length H (u32 LE)
//! 16      4     CRC-32 of every byte from offset 20 to the end (u32 LE)
//! 20      H     header, JSON: {"manifest": Manifest, "sections": [Section…]}
//! …             sections at 64-byte-aligned offsets: "object" (the relocatable object
//!               file, ELF), "weights" (safetensors)
//! ```
//!
//! Each section carries its own offset, length and CRC-32, checked before it is used.

use super::{FORMAT_VERSION, Manifest};
use serde::{Deserialize, Serialize};

/// The first bytes of an artifact.
pub const MAGIC: [u8; 8] = *b"XENONXNB";
/// Bytes before the header.
pub const PREFIX: usize = 20;
/// The largest header accepted, bytes.
pub const MAX_HEADER: usize = 16 << 20;

/// Where a section lies in the artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// `object` or `weights`.
    pub name: String,
    /// Byte offset from the start of the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// CRC-32 of the section's bytes.
    pub crc32: u32,
}

/// The header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub manifest: Manifest,
    pub sections: Vec<Section>,
}

/// Why an artifact's container could not be read (before its contents are looked at).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContainerError {
    #[error("truncated artifact: {what} needs {need} bytes, the file has {have}")]
    Truncated { what: String, need: u64, have: u64 },
    #[error("not a Xenon artifact (the first bytes are not \"XENONXNB\")")]
    BadMagic,
    #[error("artifact format version {found}; this runtime reads version {supported}")]
    FormatVersion { found: u32, supported: u32 },
    #[error(
        "checksum mismatch in {part}: stored {stored:08x}, computed {computed:08x} (the file is corrupted)"
    )]
    Checksum {
        part: String,
        stored: u32,
        computed: u32,
    },
    #[error("malformed artifact header: {0}")]
    Header(String),
    #[error("the artifact has no {0:?} section")]
    MissingSection(String),
}

/// Writes an artifact holding `manifest` and the sections `(name, bytes)`.
pub fn write(manifest: &Manifest, sections: &[(&str, &[u8])]) -> Vec<u8> {
    // The header's length depends on the offsets it holds: lay out with a placeholder
    // until the length is stable (offsets only grow with it, so this converges).
    let mut header_len = 0usize;
    loop {
        let mut offset = (PREFIX + header_len).next_multiple_of(64) as u64;
        let mut secs = Vec::new();
        for (name, bytes) in sections {
            secs.push(Section {
                name: name.to_string(),
                offset,
                len: bytes.len() as u64,
                crc32: crc32fast::hash(bytes),
            });
            offset = (offset + bytes.len() as u64).next_multiple_of(64);
        }
        let header = serde_json::to_vec(&Header {
            manifest: manifest.clone(),
            sections: secs.clone(),
        })
        .expect("headers serialize");
        if header.len() > header_len {
            header_len = header.len();
            continue;
        }
        let mut out = Vec::with_capacity(offset as usize);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&header);
        out.resize(PREFIX + header_len, b' ');
        for (s, (_, bytes)) in secs.iter().zip(sections) {
            out.resize(s.offset as usize, 0);
            out.extend_from_slice(bytes);
        }
        let crc = crc32fast::hash(&out[PREFIX..]);
        out[16..20].copy_from_slice(&crc.to_le_bytes());
        return out;
    }
}

/// An artifact's header and sections, checked: magic, format version, checksums, bounds.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub header: Header,
    sections: Vec<&'a [u8]>,
}

impl<'a> Parsed<'a> {
    /// The bytes of section `name`.
    pub fn section(&self, name: &str) -> Result<&'a [u8], ContainerError> {
        self.header
            .sections
            .iter()
            .position(|s| s.name == name)
            .map(|i| self.sections[i])
            .ok_or_else(|| ContainerError::MissingSection(name.to_string()))
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads an artifact's container. Never panics; nothing in it is trusted before its
/// checksum matched.
pub fn parse(bytes: &[u8]) -> Result<Parsed<'_>, ContainerError> {
    let have = bytes.len() as u64;
    let truncated = |what: &str, need: u64| ContainerError::Truncated {
        what: what.to_string(),
        need,
        have,
    };
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) {
            truncated("the prefix", PREFIX as u64)
        } else {
            ContainerError::BadMagic
        });
    }
    if bytes[..8] != MAGIC {
        return Err(ContainerError::BadMagic);
    }
    if bytes.len() < PREFIX {
        return Err(truncated("the prefix", PREFIX as u64));
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(ContainerError::FormatVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let header_len = u32_at(bytes, 12) as usize;
    if header_len > MAX_HEADER {
        return Err(ContainerError::Header(format!(
            "header length {header_len} exceeds the limit of {MAX_HEADER} bytes"
        )));
    }
    let header_end = PREFIX + header_len;
    if bytes.len() < header_end {
        return Err(truncated("the header", header_end as u64));
    }
    let stored = u32_at(bytes, 16);
    let computed = crc32fast::hash(&bytes[PREFIX..]);
    if stored != computed {
        // A file cut short fails here too; say so when the sections say it.
        if let Ok(h) = serde_json::from_slice::<Header>(&bytes[PREFIX..header_end])
            && let Some(end) = h
                .sections
                .iter()
                .map(|s| s.offset.saturating_add(s.len))
                .max()
            && end > have
        {
            return Err(truncated("the sections", end));
        }
        return Err(ContainerError::Checksum {
            part: "artifact".into(),
            stored,
            computed,
        });
    }
    let header: Header = serde_json::from_slice(&bytes[PREFIX..header_end])
        .map_err(|e| ContainerError::Header(e.to_string()))?;
    let mut sections = Vec::with_capacity(header.sections.len());
    for s in &header.sections {
        let end = s
            .offset
            .checked_add(s.len)
            .ok_or_else(|| ContainerError::Header(format!("section {:?} overflows", s.name)))?;
        if s.offset < header_end as u64 {
            return Err(ContainerError::Header(format!(
                "section {:?} overlaps the header",
                s.name
            )));
        }
        if end > have {
            return Err(truncated(&format!("section {:?}", s.name), end));
        }
        let data = &bytes[s.offset as usize..end as usize];
        let computed = crc32fast::hash(data);
        if computed != s.crc32 {
            return Err(ContainerError::Checksum {
                part: format!("section {:?}", s.name),
                stored: s.crc32,
                computed,
            });
        }
        sections.push(data);
    }
    Ok(Parsed { header, sections })
}
