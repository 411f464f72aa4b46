//! A run-time loader for relocatable x86-64 ELF objects: what a Rust application uses to
//! run the machine code of an ahead-of-time bundle without a system linker.
//!
//! The compiler writes a bundle's code as one relocatable object (`ET_REL`) produced by
//! `cranelift-object` with `is_pic = true`. C programs link that `.o` with the system
//! linker; [`LoadedObject::load`] does the linker's work for the same bytes inside this
//! process: it places every allocated section (`SHF_ALLOC`: text, rodata, `.data.rel.ro`)
//! in one anonymous mapping, builds a global offset table (GOT) at its end, resolves
//! undefined symbols through a caller-supplied function, applies the relocations and then
//! makes the whole mapping read + execute.
//!
//! # What is supported, and why no more
//!
//! Position-independent Cranelift objects contain few kinds of relocation: calls to host
//! functions go through the GOT (`call qword ptr [rip + disp32]`, `R_X86_64_GOTPCREL`),
//! calls and references within the object are PC-relative (`R_X86_64_PC32`,
//! `R_X86_64_PLT32`), and read-only data holds absolute addresses (`R_X86_64_64`, placed in
//! `.data.rel.ro` because it needs relocating). The loader therefore supports exactly:
//!
//! | type | number | computation | width |
//! |---|---|---|---|
//! | `R_X86_64_NONE` | 0 | nothing | 0 |
//! | `R_X86_64_64` | 1 | S + A | 8 bytes |
//! | `R_X86_64_PC32`, `R_X86_64_PLT32` | 2, 4 | S + A − P, must fit an `i32` | 4 bytes |
//! | `R_X86_64_GOTPCREL`, `R_X86_64_GOTPCRELX`, `R_X86_64_REX_GOTPCRELX` | 9, 41, 42 | G + GOT + A − P, must fit an `i32` | 4 bytes |
//! | `R_X86_64_32` | 10 | S + A, must fit a `u32` | 4 bytes |
//! | `R_X86_64_32S` | 11 | S + A, must fit an `i32` | 4 bytes |
//!
//! (S: the symbol's address, A: the addend, P: the address of the place, GOT + G: the
//! address of the symbol's GOT entry.) The GOT has one 8-byte entry per distinct symbol
//! that a GOT relocation names, holding the symbol's absolute address; instructions are
//! never relaxed. Any other relocation type (TLS, GOT-offset, 64-bit PC-relative, …) that
//! applies to a loaded section is an [`LoadError::UnsupportedRelocation`]; relocations of
//! sections that are not loaded (debug info, a non-allocated `.eh_frame`) are ignored.
//!
//! Because the whole mapping becomes read + execute after relocation, there is no writable
//! memory: a section with `SHF_WRITE` is rejected unless its name starts with
//! `.data.rel.ro` (data that is only written by the relocations, like a linker's RELRO), and
//! so are TLS, `SHT_INIT_ARRAY` and the other section types that need more than copying.
//! Section alignment up to 4096 bytes is honoured. Note that `cranelift-object` puts a data
//! object defined with `define_zeroinit` in `.bss` (writable) even when it was declared
//! read-only; bundles for this loader define such data with explicit zero bytes instead,
//! which lands in `.rodata`.
//!
//! # Robustness
//!
//! `load` never panics and never writes outside its mapping, whatever the input bytes:
//! parsing goes through the `object` crate, which reports errors instead of panicking;
//! every offset, size, symbol index and relocation place is checked; arithmetic is checked;
//! the mapping is limited to [`MAX_MAPPING_BYTES`]. A malformed object is an `Err`.
//! (What the code does when *called* is another matter: only call code from objects you
//! trust.)

use std::collections::HashMap;
use std::fmt;

use memmap2::{Mmap, MmapMut};
use object::LittleEndian;
use object::elf;
use object::read::elf::{FileHeader, Rela, SectionHeader, SectionTable, Sym, SymbolTable};
use object::read::{SectionIndex, SymbolIndex};

/// The largest mapping `load` creates, in bytes (1 GiB): sections, padding and GOT together.
pub const MAX_MAPPING_BYTES: u64 = 1 << 30;

/// The largest section alignment `load` honours, in bytes (one x86-64 page).
const MAX_ALIGN: u64 = 4096;

/// The page size the mapping length is rounded up to, in bytes.
const PAGE_BYTES: u64 = 4096;

/// Bytes per GOT entry (one absolute x86-64 address).
const GOT_ENTRY_BYTES: u64 = 8;

type Header = elf::FileHeader64<LittleEndian>;
type Symbols<'data> = SymbolTable<'data, Header, &'data [u8]>;
const LE: LittleEndian = LittleEndian;

/// Why [`LoadedObject::load`] rejected an object. Offsets are byte offsets within the named
/// section; sizes are in bytes.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes do not start with the ELF magic number `\x7fELF`.
    #[error("not an ELF file: the bytes do not start with the ELF magic number")]
    NotElf,
    /// The ELF structure is inconsistent or truncated.
    #[error("malformed ELF object: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The object (or this host) is not 64-bit little-endian x86-64.
    #[error(
        "unsupported architecture: {found}; only 64-bit little-endian x86-64 ELF objects are loaded, and only on x86-64 hosts"
    )]
    UnsupportedArch {
        /// What was found instead, e.g. `32-bit ELF (class 1)`, `ELF machine 183` or
        /// `host architecture aarch64`.
        found: String,
    },
    /// The object is an ELF file but not a relocatable object (`ET_REL`).
    #[error("not a relocatable ELF object: e_type is {e_type}, expected ET_REL (1)")]
    NotRelocatable {
        /// The `e_type` found (2: executable, 3: shared object, …).
        e_type: u16,
    },
    /// A section that would have to be loaded (or a relocation section that applies to
    /// one) cannot be loaded by this loader.
    #[error("unsupported section `{name}`: {reason}")]
    UnsupportedSection {
        /// The section's name.
        name: String,
        /// Why it cannot be loaded.
        reason: String,
    },
    /// A symbol that a relocation needs cannot be given an address.
    #[error("unsupported symbol `{name}`: {reason}")]
    UnsupportedSymbol {
        /// The symbol's name (empty for unnamed symbols).
        name: String,
        /// Why it has no address.
        reason: String,
    },
    /// A relocation of a loaded section has a type this loader does not implement.
    #[error(
        "unsupported relocation type {kind} ({name}) at offset {offset:#x} of section `{section}`",
        name = relocation_name(*.kind)
    )]
    UnsupportedRelocation {
        /// The section the relocation applies to.
        section: String,
        /// The byte offset of the relocated place within that section.
        offset: u64,
        /// The ELF relocation type number (`R_X86_64_*`).
        kind: u32,
    },
    /// An undefined symbol that the resolver does not know.
    #[error("undefined symbol `{name}`: the resolver returned no address for it")]
    UndefinedSymbol {
        /// The symbol's name.
        name: String,
    },
    /// A relocation's value does not fit its field (e.g. a PC-relative distance beyond
    /// ±2 GiB).
    #[error(
        "relocation at offset {offset:#x} of section `{section}` is out of range: its value does not fit the 32-bit field"
    )]
    RelocationOutOfRange {
        /// The section the relocation applies to.
        section: String,
        /// The byte offset of the relocated place within that section.
        offset: u64,
    },
    /// The sections and GOT together would exceed [`MAX_MAPPING_BYTES`].
    #[error("object too large to load: more than {limit} bytes would be mapped")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Creating or protecting the anonymous mapping failed.
    #[error("mapping the object into memory failed: {0}")]
    Map(#[from] std::io::Error),
}

/// The conventional name of an x86-64 ELF relocation type, for error messages.
fn relocation_name(kind: u32) -> &'static str {
    match kind {
        elf::R_X86_64_NONE => "R_X86_64_NONE",
        elf::R_X86_64_64 => "R_X86_64_64",
        elf::R_X86_64_PC32 => "R_X86_64_PC32",
        elf::R_X86_64_GOT32 => "R_X86_64_GOT32",
        elf::R_X86_64_PLT32 => "R_X86_64_PLT32",
        elf::R_X86_64_COPY => "R_X86_64_COPY",
        elf::R_X86_64_GLOB_DAT => "R_X86_64_GLOB_DAT",
        elf::R_X86_64_JUMP_SLOT => "R_X86_64_JUMP_SLOT",
        elf::R_X86_64_RELATIVE => "R_X86_64_RELATIVE",
        elf::R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
        elf::R_X86_64_32 => "R_X86_64_32",
        elf::R_X86_64_32S => "R_X86_64_32S",
        elf::R_X86_64_16 => "R_X86_64_16",
        elf::R_X86_64_PC16 => "R_X86_64_PC16",
        elf::R_X86_64_8 => "R_X86_64_8",
        elf::R_X86_64_PC8 => "R_X86_64_PC8",
        elf::R_X86_64_DTPMOD64 => "R_X86_64_DTPMOD64",
        elf::R_X86_64_DTPOFF64 => "R_X86_64_DTPOFF64",
        elf::R_X86_64_TPOFF64 => "R_X86_64_TPOFF64",
        elf::R_X86_64_TLSGD => "R_X86_64_TLSGD",
        elf::R_X86_64_TLSLD => "R_X86_64_TLSLD",
        elf::R_X86_64_DTPOFF32 => "R_X86_64_DTPOFF32",
        elf::R_X86_64_GOTTPOFF => "R_X86_64_GOTTPOFF",
        elf::R_X86_64_TPOFF32 => "R_X86_64_TPOFF32",
        elf::R_X86_64_PC64 => "R_X86_64_PC64",
        elf::R_X86_64_GOTOFF64 => "R_X86_64_GOTOFF64",
        elf::R_X86_64_GOTPC32 => "R_X86_64_GOTPC32",
        elf::R_X86_64_GOT64 => "R_X86_64_GOT64",
        elf::R_X86_64_GOTPCREL64 => "R_X86_64_GOTPCREL64",
        elf::R_X86_64_GOTPC64 => "R_X86_64_GOTPC64",
        elf::R_X86_64_GOTPLT64 => "R_X86_64_GOTPLT64",
        elf::R_X86_64_PLTOFF64 => "R_X86_64_PLTOFF64",
        elf::R_X86_64_SIZE32 => "R_X86_64_SIZE32",
        elf::R_X86_64_SIZE64 => "R_X86_64_SIZE64",
        elf::R_X86_64_GOTPC32_TLSDESC => "R_X86_64_GOTPC32_TLSDESC",
        elf::R_X86_64_TLSDESC_CALL => "R_X86_64_TLSDESC_CALL",
        elf::R_X86_64_TLSDESC => "R_X86_64_TLSDESC",
        elf::R_X86_64_IRELATIVE => "R_X86_64_IRELATIVE",
        elf::R_X86_64_RELATIVE64 => "R_X86_64_RELATIVE64",
        elf::R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
        elf::R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
        _ => "unknown",
    }
}

fn malformed(reason: impl Into<String>) -> LoadError {
    LoadError::Malformed {
        reason: reason.into(),
    }
}

fn too_large() -> LoadError {
    LoadError::TooLarge {
        limit: MAX_MAPPING_BYTES,
    }
}

fn parse_error(e: object::read::Error) -> LoadError {
    malformed(e.to_string())
}

/// Code and data of one relocatable ELF object, placed in executable memory of this process.
///
/// The mapping is read + execute and never changes after [`LoadedObject::load`] returns; it
/// is unmapped when the `LoadedObject` is dropped, so pointers from
/// [`LoadedObject::symbol`] (and function pointers made from them) must not outlive it.
pub struct LoadedObject {
    /// The read + execute mapping: sections, then the GOT.
    map: Mmap,
    /// Defined symbols by name: byte offset from the start of `map`.
    symbols: HashMap<String, usize>,
}

// `LoadedObject` is `Send + Sync` without any `unsafe impl`: it holds a `memmap2::Mmap`
// (itself `Send + Sync`: an immutable mapping owned by value) and a `HashMap` of plain data,
// and no method mutates either after `load`. This assertion keeps it so.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LoadedObject>();
};

impl fmt::Debug for LoadedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedObject")
            .field("address", &self.map.as_ptr())
            .field("len", &self.map.len())
            .field("symbols", &self.symbols.len())
            .finish()
    }
}

impl LoadedObject {
    /// Maps every allocated section (`SHF_ALLOC`: text, rodata, `.data.rel.ro`, and
    /// zero-filled `SHT_NOBITS` sections that are not writable) of `elf` into one anonymous
    /// mapping, resolves undefined symbols with `resolve` (name → absolute address in this
    /// process, `None` if unknown), applies every relocation, then makes the mapping
    /// read + execute.
    ///
    /// `elf` must be a 64-bit little-endian x86-64 relocatable object; see the
    /// [module documentation](self) for the supported sections and relocations. An
    /// undefined weak symbol that `resolve` does not know gets address 0. On hosts other
    /// than x86-64 this returns [`LoadError::UnsupportedArch`] after checking the header.
    ///
    /// Never panics and never writes outside the mapping, whatever `elf` holds.
    pub fn load(
        elf: &[u8],
        resolve: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<LoadedObject, LoadError> {
        let header = check_header(elf)?;
        if cfg!(not(target_arch = "x86_64")) {
            return Err(LoadError::UnsupportedArch {
                found: format!("host architecture {}", std::env::consts::ARCH),
            });
        }
        Loader::parse(elf, header)?.load(resolve)
    }

    /// The address of the symbol `name` in the mapping, or `None` if the object defines no
    /// such symbol in a loaded section (undefined, absolute, section and file symbols are
    /// not looked up). Global and weak symbols take precedence over local ones of the same
    /// name. The pointer is valid while `self` lives; turning it into a function
    /// pointer and calling it is `unsafe` and up to the caller.
    pub fn symbol(&self, name: &str) -> Option<*const u8> {
        self.symbols
            .get(name)
            .map(|&offset| self.map.as_ptr().wrapping_add(offset))
    }

    /// Total mapped bytes: the sections, their alignment padding and the GOT, rounded up to
    /// whole 4096-byte pages (at least one page).
    #[expect(
        clippy::len_without_is_empty,
        reason = "a mapping is never empty: it has at least one page"
    )]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the `len` bytes at `ptr` lie inside the mapping.
    pub fn contains(&self, ptr: *const u8, len: usize) -> bool {
        let start = self.map.as_ptr() as usize;
        let p = ptr as usize;
        p >= start
            && p.checked_add(len)
                .is_some_and(|end| end <= start + self.map.len())
    }
}

/// Checks the ELF identification and header: magic, class, byte order, machine, type.
fn check_header(data: &[u8]) -> Result<&Header, LoadError> {
    if data.get(..elf::ELFMAG.len()) != Some(&elf::ELFMAG[..]) {
        return Err(LoadError::NotElf);
    }
    let (Some(&class), Some(&order)) = (data.get(4), data.get(5)) else {
        return Err(malformed("truncated ELF identification"));
    };
    match class {
        elf::ELFCLASS64 => {}
        elf::ELFCLASS32 => {
            return Err(LoadError::UnsupportedArch {
                found: "32-bit ELF (class 1)".into(),
            });
        }
        other => return Err(malformed(format!("unknown ELF class {other}"))),
    }
    match order {
        elf::ELFDATA2LSB => {}
        elf::ELFDATA2MSB => {
            return Err(LoadError::UnsupportedArch {
                found: "big-endian ELF".into(),
            });
        }
        other => return Err(malformed(format!("unknown ELF data encoding {other}"))),
    }
    let header = Header::parse(data).map_err(parse_error)?;
    let machine = header.e_machine(LE);
    if machine != elf::EM_X86_64 {
        return Err(LoadError::UnsupportedArch {
            found: format!("ELF machine {machine}"),
        });
    }
    let e_type = header.e_type(LE);
    if e_type != elf::ET_REL {
        return Err(LoadError::NotRelocatable { e_type });
    }
    Ok(header)
}

/// Where one loaded section goes.
struct Placed<'data> {
    /// Byte offset from the start of the mapping.
    offset: u64,
    /// Section size in bytes.
    size: u64,
    /// The bytes to copy (empty for `SHT_NOBITS`).
    bytes: &'data [u8],
    /// The section's name, for error messages.
    name: String,
}

/// One `SHT_RELA` section that applies to a loaded section.
struct RelocSection<'data> {
    /// The index of the section it applies to.
    target: usize,
    /// The relocations.
    relas: &'data [elf::Rela64<LittleEndian>],
    /// Index into `Loader::symtabs` of its symbol table.
    symtab: usize,
}

/// A parsed object with its layout decided, before any memory is mapped.
struct Loader<'data> {
    data: &'data [u8],
    sections: SectionTable<'data, Header, &'data [u8]>,
    /// Indexed by section index; `Some` for the loaded sections.
    placed: Vec<Option<Placed<'data>>>,
    /// The symbol tables that relocation sections use, with their section index.
    symtabs: Vec<(SectionIndex, Symbols<'data>)>,
    relocations: Vec<RelocSection<'data>>,
    /// GOT slot of each distinct (symbol table, symbol index) that a GOT relocation names.
    got: HashMap<(usize, u32), u64>,
    /// Byte offset of the GOT from the start of the mapping.
    got_offset: u64,
    /// Bytes to map (a whole number of pages, at least one).
    map_len: u64,
}

fn section_name<'data>(
    sections: &SectionTable<'data, Header, &'data [u8]>,
    sh: &elf::SectionHeader64<LittleEndian>,
) -> String {
    match sections.section_name(LE, sh) {
        Ok(name) => String::from_utf8_lossy(name).into_owned(),
        Err(_) => format!("<section name at {:#x}>", sh.sh_name(LE)),
    }
}

fn align_up(value: u64, align: u64) -> Result<u64, LoadError> {
    debug_assert!(align.is_power_of_two());
    value
        .checked_add(align - 1)
        .map(|v| v & !(align - 1))
        .ok_or_else(too_large)
}

fn is_got_relocation(kind: u32) -> bool {
    matches!(
        kind,
        elf::R_X86_64_GOTPCREL | elf::R_X86_64_GOTPCRELX | elf::R_X86_64_REX_GOTPCRELX
    )
}

impl<'data> Loader<'data> {
    /// Parses the section table, lays out the loaded sections and the GOT, and collects the
    /// relocation sections that apply to loaded sections.
    fn parse(data: &'data [u8], header: &'data Header) -> Result<Self, LoadError> {
        let sections = header.sections(LE, data).map_err(parse_error)?;

        // Lay out the allocated sections one after another, each at its alignment.
        let mut placed: Vec<Option<Placed<'data>>> = Vec::with_capacity(sections.len());
        let mut cursor: u64 = 0;
        for sh in sections.iter() {
            let flags = sh.sh_flags(LE);
            if flags & u64::from(elf::SHF_ALLOC) == 0 {
                placed.push(None);
                continue;
            }
            let name = section_name(&sections, sh);
            let unsupported = |reason: String| LoadError::UnsupportedSection {
                name: name.clone(),
                reason,
            };
            let sh_type = sh.sh_type(LE);
            match sh_type {
                elf::SHT_PROGBITS | elf::SHT_NOBITS | elf::SHT_X86_64_UNWIND => {}
                other => {
                    return Err(unsupported(format!(
                        "allocated section of type {other:#x}; only SHT_PROGBITS, SHT_NOBITS and SHT_X86_64_UNWIND are loaded"
                    )));
                }
            }
            if flags & u64::from(elf::SHF_TLS) != 0 {
                return Err(unsupported(
                    "thread-local sections are not supported".into(),
                ));
            }
            if flags & u64::from(elf::SHF_COMPRESSED) != 0 {
                return Err(unsupported("compressed sections are not supported".into()));
            }
            if flags & u64::from(elf::SHF_WRITE) != 0 && !name.starts_with(".data.rel.ro") {
                return Err(unsupported(
                    "writable section: the loaded object is read + execute after relocation, so only `.data.rel.ro*` may be writable".into(),
                ));
            }
            let align = sh.sh_addralign(LE).max(1);
            if !align.is_power_of_two() {
                return Err(malformed(format!(
                    "section `{name}` has alignment {align}, not a power of two"
                )));
            }
            if align > MAX_ALIGN {
                return Err(unsupported(format!(
                    "alignment {align} bytes exceeds the supported {MAX_ALIGN}"
                )));
            }
            let size = sh.sh_size(LE);
            let bytes: &'data [u8] = if sh_type == elf::SHT_NOBITS {
                &[]
            } else {
                sh.data(LE, data).map_err(parse_error)?
            };
            let offset = align_up(cursor, align)?;
            cursor = offset.checked_add(size).ok_or_else(too_large)?;
            if cursor > MAX_MAPPING_BYTES {
                return Err(too_large());
            }
            placed.push(Some(Placed {
                offset,
                size,
                bytes,
                name,
            }));
        }

        // Relocation sections that apply to loaded sections; the others are ignored.
        let mut symtabs: Vec<(SectionIndex, Symbols<'data>)> = Vec::new();
        let mut relocations = Vec::new();
        for sh in sections.iter() {
            let sh_type = sh.sh_type(LE);
            if !matches!(sh_type, elf::SHT_REL | elf::SHT_RELA | elf::SHT_CREL) {
                continue;
            }
            let target = sh.info_link(LE).0;
            if !matches!(placed.get(target), Some(Some(_))) {
                continue;
            }
            let Some((relas, link)) = sh.rela(LE, data).map_err(parse_error)? else {
                return Err(LoadError::UnsupportedSection {
                    name: section_name(&sections, sh),
                    reason:
                        "only SHT_RELA relocation sections (with explicit addends) are supported"
                            .into(),
                });
            };
            let symtab = match symtabs.iter().position(|(index, _)| *index == link) {
                Some(i) => i,
                None => {
                    let table = sections
                        .symbol_table_by_index(LE, data, link)
                        .map_err(parse_error)?;
                    symtabs.push((link, table));
                    symtabs.len() - 1
                }
            };
            relocations.push(RelocSection {
                target,
                relas,
                symtab,
            });
        }

        // The GOT: one 8-byte entry per distinct symbol named by a GOT relocation.
        let mut got: HashMap<(usize, u32), u64> = HashMap::new();
        for section in &relocations {
            for rela in section.relas {
                if is_got_relocation(rela.r_type(LE, false)) {
                    let next = got.len() as u64;
                    got.entry((section.symtab, rela.r_sym(LE, false)))
                        .or_insert(next);
                }
            }
        }
        let got_offset = align_up(cursor, GOT_ENTRY_BYTES)?;
        let end = (got.len() as u64)
            .checked_mul(GOT_ENTRY_BYTES)
            .and_then(|bytes| bytes.checked_add(got_offset))
            .ok_or_else(too_large)?;
        let map_len = align_up(end, PAGE_BYTES)?.max(PAGE_BYTES);
        if map_len > MAX_MAPPING_BYTES {
            return Err(too_large());
        }

        Ok(Loader {
            data,
            sections,
            placed,
            symtabs,
            relocations,
            got,
            got_offset,
            map_len,
        })
    }

    /// Maps, copies, relocates, fills the GOT and protects.
    fn load(self, resolve: &dyn Fn(&str) -> Option<usize>) -> Result<LoadedObject, LoadError> {
        let map_len = usize::try_from(self.map_len).map_err(|_| too_large())?;
        let mut map = MmapMut::map_anon(map_len)?;
        let base = map.as_ptr().addr() as u64;

        for placed in self.placed.iter().flatten() {
            write(&mut map, placed.offset, placed.bytes)?;
        }

        let mut symbols = SymbolAddresses {
            loader: &self,
            base,
            resolve,
            undefined: HashMap::new(),
        };

        for section in &self.relocations {
            let Some(Some(target)) = self.placed.get(section.target) else {
                return Err(malformed("relocation target is not loaded"));
            };
            let Some((_, symtab)) = self.symtabs.get(section.symtab) else {
                return Err(malformed("relocation symbol table missing"));
            };
            for rela in section.relas {
                let kind = rela.r_type(LE, false);
                let offset = rela.r_offset(LE);
                let addend = rela.r_addend(LE);
                let symbol = rela.r_sym(LE, false);
                let width: u64 = match kind {
                    elf::R_X86_64_NONE => continue,
                    elf::R_X86_64_64 => 8,
                    elf::R_X86_64_PC32
                    | elf::R_X86_64_PLT32
                    | elf::R_X86_64_GOTPCREL
                    | elf::R_X86_64_GOTPCRELX
                    | elf::R_X86_64_REX_GOTPCRELX
                    | elf::R_X86_64_32
                    | elf::R_X86_64_32S => 4,
                    _ => {
                        return Err(LoadError::UnsupportedRelocation {
                            section: target.name.clone(),
                            offset,
                            kind,
                        });
                    }
                };
                if offset
                    .checked_add(width)
                    .is_none_or(|end| end > target.size)
                {
                    return Err(malformed(format!(
                        "relocation at offset {offset:#x} of section `{}` extends past the section's {} bytes",
                        target.name, target.size
                    )));
                }
                // In range of the mapping: target.offset + target.size <= map_len.
                let at = target.offset + offset;
                let place = i128::from(base + at);
                let out_of_range = || LoadError::RelocationOutOfRange {
                    section: target.name.clone(),
                    offset,
                };
                let addend = i128::from(addend);
                match kind {
                    elf::R_X86_64_64 => {
                        let s = symbols.address(section.symtab, symtab, symbol)?;
                        let value = s.wrapping_add_signed(rela.r_addend(LE));
                        write(&mut map, at, &value.to_le_bytes())?;
                    }
                    elf::R_X86_64_PC32 | elf::R_X86_64_PLT32 => {
                        let s = i128::from(symbols.address(section.symtab, symtab, symbol)?);
                        let value =
                            i32::try_from(s + addend - place).map_err(|_| out_of_range())?;
                        write(&mut map, at, &value.to_le_bytes())?;
                    }
                    elf::R_X86_64_GOTPCREL
                    | elf::R_X86_64_GOTPCRELX
                    | elf::R_X86_64_REX_GOTPCRELX => {
                        let slot = self
                            .got
                            .get(&(section.symtab, symbol))
                            .copied()
                            .ok_or_else(|| malformed("GOT entry missing"))?;
                        let entry = i128::from(base + self.got_offset + slot * GOT_ENTRY_BYTES);
                        let value =
                            i32::try_from(entry + addend - place).map_err(|_| out_of_range())?;
                        write(&mut map, at, &value.to_le_bytes())?;
                    }
                    elf::R_X86_64_32 => {
                        let s = i128::from(symbols.address(section.symtab, symtab, symbol)?);
                        let value = u32::try_from(s + addend).map_err(|_| out_of_range())?;
                        write(&mut map, at, &value.to_le_bytes())?;
                    }
                    elf::R_X86_64_32S => {
                        let s = i128::from(symbols.address(section.symtab, symtab, symbol)?);
                        let value = i32::try_from(s + addend).map_err(|_| out_of_range())?;
                        write(&mut map, at, &value.to_le_bytes())?;
                    }
                    _ => {
                        return Err(LoadError::UnsupportedRelocation {
                            section: target.name.clone(),
                            offset,
                            kind,
                        });
                    }
                }
            }
        }

        for (&(symtab_index, symbol), &slot) in &self.got {
            let Some((_, symtab)) = self.symtabs.get(symtab_index) else {
                return Err(malformed("GOT symbol table missing"));
            };
            let address = symbols.address(symtab_index, symtab, symbol)?;
            let at = self.got_offset + slot * GOT_ENTRY_BYTES;
            write(&mut map, at, &address.to_le_bytes())?;
        }

        let defined = self.defined_symbols()?;
        let map = map.make_exec()?;
        Ok(LoadedObject {
            map,
            symbols: defined,
        })
    }

    /// The defined symbols of the object's `SHT_SYMTAB` that lie in loaded sections, by
    /// name, as byte offsets from the start of the mapping.
    fn defined_symbols(&self) -> Result<HashMap<String, usize>, LoadError> {
        let table = self
            .sections
            .symbols(LE, self.data, elf::SHT_SYMTAB)
            .map_err(parse_error)?;
        let mut out: HashMap<String, (usize, bool)> = HashMap::new();
        for (symbol_index, sym) in table.enumerate() {
            if symbol_index == SymbolIndex(0)
                || matches!(sym.st_type(), elf::STT_SECTION | elf::STT_FILE)
            {
                continue;
            }
            let Ok(Some(section)) = table.symbol_section(LE, sym, symbol_index) else {
                continue;
            };
            let Some(Some(placed)) = self.placed.get(section.0) else {
                continue;
            };
            let Ok(Ok(name)) = table.symbol_name(LE, sym).map(std::str::from_utf8) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let value = sym.st_value(LE);
            if value > placed.size {
                return Err(malformed(format!(
                    "symbol `{name}` lies outside its section `{}`",
                    placed.name
                )));
            }
            let offset = usize::try_from(placed.offset + value)
                .map_err(|_| malformed("symbol offset overflows"))?;
            let global = sym.st_bind() != elf::STB_LOCAL;
            match out.get(name) {
                Some(&(_, true)) => {}
                Some(&(_, false)) if !global => {}
                _ => {
                    out.insert(name.to_owned(), (offset, global));
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|(name, (offset, _))| (name, offset))
            .collect())
    }
}

/// Resolves relocation symbols to absolute addresses, asking the resolver once per
/// undefined symbol.
struct SymbolAddresses<'a, 'data> {
    loader: &'a Loader<'data>,
    base: u64,
    resolve: &'a dyn Fn(&str) -> Option<usize>,
    undefined: HashMap<(usize, u32), u64>,
}

impl SymbolAddresses<'_, '_> {
    /// The absolute address of symbol `index` of symbol table `symtab_index`.
    fn address(
        &mut self,
        symtab_index: usize,
        symtab: &Symbols<'_>,
        index: u32,
    ) -> Result<u64, LoadError> {
        if index == 0 {
            // The null symbol: S = 0, the addend is the value.
            return Ok(0);
        }
        let symbol_index = SymbolIndex(index as usize);
        let sym = symtab.symbol(symbol_index).map_err(parse_error)?;
        let name = || {
            symtab
                .symbol_name(LE, sym)
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_default()
        };
        if matches!(sym.st_type(), elf::STT_TLS | elf::STT_GNU_IFUNC) {
            return Err(LoadError::UnsupportedSymbol {
                name: name(),
                reason: "thread-local and indirect-function symbols are not supported".into(),
            });
        }
        match sym.st_shndx(LE) {
            elf::SHN_UNDEF => {
                if let Some(&address) = self.undefined.get(&(symtab_index, index)) {
                    return Ok(address);
                }
                let raw = symtab.symbol_name(LE, sym).map_err(parse_error)?;
                let name = std::str::from_utf8(raw)
                    .map_err(|_| malformed("undefined symbol name is not UTF-8"))?;
                let address = match (self.resolve)(name) {
                    Some(address) => address as u64,
                    None if sym.st_bind() == elf::STB_WEAK => 0,
                    None => {
                        return Err(LoadError::UndefinedSymbol {
                            name: name.to_owned(),
                        });
                    }
                };
                self.undefined.insert((symtab_index, index), address);
                Ok(address)
            }
            elf::SHN_ABS => Ok(sym.st_value(LE)),
            elf::SHN_COMMON => Err(LoadError::UnsupportedSymbol {
                name: name(),
                reason: "common symbols (uninitialised writable data) are not supported".into(),
            }),
            shndx if shndx >= elf::SHN_LORESERVE && shndx != elf::SHN_XINDEX => {
                Err(LoadError::UnsupportedSymbol {
                    name: name(),
                    reason: format!("reserved section index {shndx:#x}"),
                })
            }
            _ => {
                let section = symtab
                    .symbol_section(LE, sym, symbol_index)
                    .map_err(parse_error)?
                    .ok_or_else(|| malformed("symbol has no section"))?;
                let Some(Some(placed)) = self.loader.placed.get(section.0) else {
                    return Err(LoadError::UnsupportedSymbol {
                        name: name(),
                        reason: format!(
                            "defined in section {}, which is not loaded (not SHF_ALLOC)",
                            section.0
                        ),
                    });
                };
                let value = sym.st_value(LE);
                if value > placed.size {
                    return Err(malformed(format!(
                        "symbol `{}` lies outside its section `{}`",
                        name(),
                        placed.name
                    )));
                }
                Ok(self.base + placed.offset + value)
            }
        }
    }
}

/// Copies `bytes` into `map` at byte offset `at`, or fails (never panics) if they do not fit.
fn write(map: &mut MmapMut, at: u64, bytes: &[u8]) -> Result<(), LoadError> {
    let start = usize::try_from(at).map_err(|_| malformed("offset overflows"))?;
    let end = start
        .checked_add(bytes.len())
        .ok_or_else(|| malformed("offset overflows"))?;
    map.get_mut(start..end)
        .ok_or_else(|| malformed("write outside the mapping"))?
        .copy_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_up_rounds_and_reports_overflow() {
        assert_eq!(align_up(0, 16).unwrap(), 0);
        assert_eq!(align_up(1, 16).unwrap(), 16);
        assert_eq!(align_up(4096, 4096).unwrap(), 4096);
        assert_eq!(align_up(4097, 1).unwrap(), 4097);
        assert!(matches!(
            align_up(u64::MAX, 8),
            Err(LoadError::TooLarge { .. })
        ));
    }

    #[test]
    fn messages_name_what_is_wrong() {
        let err = LoadError::UnsupportedRelocation {
            section: ".text".into(),
            offset: 0x10,
            kind: elf::R_X86_64_TLSGD,
        };
        assert_eq!(
            err.to_string(),
            "unsupported relocation type 19 (R_X86_64_TLSGD) at offset 0x10 of section `.text`"
        );
        assert_eq!(relocation_name(999), "unknown");
        let err = LoadError::UndefinedSymbol {
            name: "host_fn".into(),
        };
        assert!(err.to_string().contains("`host_fn`"));
    }

    #[test]
    fn header_checks_come_first() {
        assert!(matches!(check_header(b""), Err(LoadError::NotElf)));
        assert!(matches!(
            check_header(b"\x7fELF"),
            Err(LoadError::Malformed { .. })
        ));
        assert!(matches!(
            check_header(b"\x7fELF\x02\x01"),
            Err(LoadError::Malformed { .. })
        ));
    }
}
