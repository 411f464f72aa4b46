//! A reader for the IDX format of the MNIST release, raw or gzip-compressed.
//!
//! An IDX file is a big-endian header followed by the data:
//!
//! | bytes | meaning |
//! |---|---|
//! | 0–1 | two zero bytes |
//! | 2 | element type: `0x08` unsigned byte (the only type read here), `0x09` signed byte, `0x0B` i16, `0x0C` i32, `0x0D` f32, `0x0E` f64 |
//! | 3 | rank (number of dimensions) |
//! | 4 .. 4+4·rank | each dimension as a big-endian `u32` |
//! | then | the elements, row-major, exactly the product of the dimensions |
//!
//! A file whose first two bytes are the gzip magic `1f 8b` is decompressed on the fly
//! (whatever its name); anything else is read as raw IDX. Concatenated gzip members are
//! read as one stream, as `gunzip` does.
//!
//! The reader never trusts the header to size its buffers: it allocates at most what the
//! file actually holds (for a raw file, its length; for a gzip stream, what has been
//! decompressed so far), and every defect is reported as a [`DataError`] naming the file:
//! a truncated header or body (with expected and found byte counts), a bad magic number, an
//! unsupported element type, a wrong rank, a corrupt gzip stream or trailing bytes.

use super::DataError;
use flate2::bufread::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// The IDX element-type code for unsigned bytes, the only type this reader accepts.
pub const IDX_TYPE_U8: u8 = 0x08;

/// The two bytes that open every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An IDX array of unsigned bytes: its dimensions and its row-major elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost first (MNIST images: `[N, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

impl IdxArray {
    /// The first dimension (the number of items), or 1 for a rank-0 array.
    pub fn count(&self) -> usize {
        self.dims.first().copied().unwrap_or(1)
    }
}

/// Reads an IDX file of unsigned bytes of any rank, raw or gzipped.
///
/// ```
/// use std::path::Path;
/// use xenon_frontend::data::idx;
/// let dir = Path::new(xenon_frontend::data::BUNDLED_MNIST_DIR);
/// let labels = idx::read_idx(&dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
/// assert_eq!(labels.dims, vec![1000]);
/// assert!(labels.data.iter().all(|&l| l <= 9));
/// ```
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    read_file(path, None)
}

/// Reads an IDX file that must have rank 3 (`[N, H, W]` images), raw or gzipped.
pub fn read_idx_images(path: &Path) -> Result<IdxArray, DataError> {
    read_file(
        path,
        Some(Expect {
            rank: 3,
            what: "images",
        }),
    )
}

/// Reads an IDX file that must have rank 1 (`[N]` labels), raw or gzipped.
pub fn read_idx_labels(path: &Path) -> Result<IdxArray, DataError> {
    read_file(
        path,
        Some(Expect {
            rank: 1,
            what: "labels",
        }),
    )
}

/// Parses IDX bytes already in memory (raw or gzipped). `path` is used only in error
/// messages.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    decode(bytes, path, None, Some(bytes.len() as u64))
}

/// The rank a caller requires, and what the file should hold (for the error message).
#[derive(Clone, Copy)]
struct Expect {
    rank: u8,
    what: &'static str,
}

fn read_file(path: &Path, expect: Option<Expect>) -> Result<IdxArray, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    decode(BufReader::new(file), path, expect, Some(len))
}

/// Detects gzip, then parses. `size_hint` is the number of raw bytes, used only to bound
/// the initial allocation of an uncompressed file.
fn decode<R: BufRead>(
    mut reader: R,
    path: &Path,
    expect: Option<Expect>,
    size_hint: Option<u64>,
) -> Result<IdxArray, DataError> {
    let head = reader.fill_buf().map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if head.starts_with(&GZIP_MAGIC) {
        let gz_err = |source| DataError::Gzip {
            path: path.to_path_buf(),
            source,
        };
        parse(MultiGzDecoder::new(reader), path, expect, None, gz_err)
    } else {
        let io_err = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        parse(reader, path, expect, size_hint, io_err)
    }
}

/// Parses the header and data of an IDX stream; `err` turns a read failure into the right
/// error (I/O for raw files, corrupt gzip for compressed ones).
fn parse<R: Read>(
    mut r: R,
    path: &Path,
    expect: Option<Expect>,
    size_hint: Option<u64>,
    err: impl Fn(io::Error) -> DataError,
) -> Result<IdxArray, DataError> {
    let p = || path.to_path_buf();

    let mut magic = [0u8; 4];
    let got = read_full(&mut r, &mut magic).map_err(&err)?;
    if got < magic.len() {
        return Err(DataError::TruncatedHeader {
            path: p(),
            expected: magic.len(),
            got,
        });
    }
    let magic_u32 = u32::from_be_bytes(magic);
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::BadMagic {
            path: p(),
            magic: magic_u32,
        });
    }
    if magic[2] != IDX_TYPE_U8 {
        return Err(DataError::UnsupportedType {
            path: p(),
            type_code: magic[2],
            type_name: type_name(magic[2]),
        });
    }
    let rank = magic[3];
    if let Some(e) = expect
        && rank != e.rank
    {
        return Err(DataError::WrongRank {
            path: p(),
            what: e.what,
            expected: e.rank,
            got: rank,
            magic: magic_u32,
        });
    }

    // At most 255 · 4 = 1020 bytes, so this allocation is safe whatever the file says.
    let mut dim_bytes = vec![0u8; 4 * rank as usize];
    let got = read_full(&mut r, &mut dim_bytes).map_err(&err)?;
    let header_len = 4 + dim_bytes.len();
    if got < dim_bytes.len() {
        return Err(DataError::TruncatedHeader {
            path: p(),
            expected: header_len,
            got: 4 + got,
        });
    }
    let raw_dims: Vec<u32> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let dims: Vec<usize> = raw_dims.iter().map(|&d| d as usize).collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::TooLarge {
            path: p(),
            dims: raw_dims.clone(),
        })?;

    // Do not trust `expected` for the allocation: start from what the file can hold.
    let capacity = match size_hint {
        Some(len) => (expected as u64).min(len.saturating_sub(header_len as u64)) as usize,
        None => 0,
    };
    let mut data = Vec::with_capacity(capacity);
    (&mut r)
        .take(expected as u64)
        .read_to_end(&mut data)
        .map_err(&err)?;
    if data.len() < expected {
        return Err(DataError::TruncatedData {
            path: p(),
            dims,
            expected,
            got: data.len(),
        });
    }
    // Reading to the end also makes the gzip decoder check the stream's CRC and length.
    let extra = io::copy(&mut r, &mut io::sink()).map_err(&err)?;
    if extra > 0 {
        return Err(DataError::TrailingData {
            path: p(),
            dims,
            expected,
            extra,
        });
    }
    Ok(IdxArray { dims, data })
}

/// Fills `buf` as far as the stream allows; returns how many bytes were read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The IDX name of an element-type code.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "not an IDX type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn idx_bytes(type_code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, type_code, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn path() -> &'static Path {
        Path::new("mem/test.idx")
    }

    #[test]
    fn raw_and_gzipped_parse_alike() {
        let raw = idx_bytes(0x08, &[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&raw, path()).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(a.count(), 2);
        assert_eq!(parse_idx(&gzip(&raw), path()).unwrap(), a);
    }

    #[test]
    fn rank_zero_holds_one_element() {
        let a = parse_idx(&idx_bytes(0x08, &[], &[42]), path()).unwrap();
        assert_eq!(a.dims, Vec::<usize>::new());
        assert_eq!(a.data, vec![42]);
        assert_eq!(a.count(), 1);
    }

    #[test]
    fn empty_and_short_headers_are_truncated() {
        let e = parse_idx(&[], path()).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::TruncatedHeader {
                    expected: 4,
                    got: 0,
                    ..
                }
            ),
            "{e}"
        );
        // Rank 3 needs 16 header bytes; give 4 + 5.
        let mut b = idx_bytes(0x08, &[1, 28, 28], &[]);
        b.truncate(9);
        let e = parse_idx(&b, path()).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::TruncatedHeader {
                    expected: 16,
                    got: 9,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "mem/test.idx: truncated IDX header: need 16 bytes, found only 9"
        );
    }

    #[test]
    fn unsupported_types_are_named() {
        let e = parse_idx(&idx_bytes(0x0D, &[1], &[0, 0, 0, 0]), path()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mem/test.idx: unsupported IDX element type 0x0d (f32); only unsigned bytes \
             (0x08) are supported"
        );
    }

    #[test]
    fn trailing_bytes_are_counted() {
        let b = idx_bytes(0x08, &[2], &[1, 2, 3, 4, 5]);
        let e = parse_idx(&b, path()).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::TrailingData {
                    expected: 2,
                    extra: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_idx(&gzip(&b), path()).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::TrailingData {
                    expected: 2,
                    extra: 3,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn huge_dimensions_do_not_allocate() {
        // The header promises 4 GiB · 4 GiB bytes; only 3 follow.
        let b = idx_bytes(0x08, &[u32::MAX, u32::MAX], &[1, 2, 3]);
        let e = parse_idx(&b, path()).unwrap_err();
        if usize::BITS == 64 {
            assert!(matches!(e, DataError::TruncatedData { got: 3, .. }), "{e}");
            let e = parse_idx(&gzip(&b), path()).unwrap_err();
            assert!(matches!(e, DataError::TruncatedData { got: 3, .. }), "{e}");
        } else {
            assert!(matches!(e, DataError::TooLarge { .. }), "{e}");
        }
        // Overflows usize on every platform.
        let b = idx_bytes(0x08, &[u32::MAX, u32::MAX, u32::MAX], &[1]);
        let e = parse_idx(&b, path()).unwrap_err();
        assert!(matches!(e, DataError::TooLarge { .. }), "{e}");
        let e = parse_idx(&gzip(&b), path()).unwrap_err();
        assert!(matches!(e, DataError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn garbage_after_a_gzip_member_is_a_gzip_error() {
        let mut b = gzip(&idx_bytes(0x08, &[1], &[7]));
        b.extend_from_slice(b"junk");
        let e = parse_idx(&b, path()).unwrap_err();
        assert!(matches!(e, DataError::Gzip { .. }), "{e}");
    }
}
