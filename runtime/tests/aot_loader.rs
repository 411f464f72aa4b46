//! Tests of the run-time ELF loader (`xenon_runtime::aot::loader`): objects are built in
//! memory with `object::write` around hand-encoded x86-64 machine code, loaded, and (on
//! x86-64 hosts) called.

use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope, elf,
};
use proptest::prelude::*;
use xenon_runtime::aot::loader::{LoadError, LoadedObject};

// ---------------------------------------------------------------------------------------
// Building objects

fn new_object() -> Object<'static> {
    Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little)
}

fn text(obj: &mut Object<'static>) -> SectionId {
    obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text)
}

/// Adds a global symbol of `kind` defined at `value` in `section`.
fn define(
    obj: &mut Object<'static>,
    name: &str,
    section: SectionId,
    value: u64,
    size: u64,
    kind: SymbolKind,
) -> SymbolId {
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value,
        size,
        kind,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    })
}

/// Appends `code` to `section` (16-byte aligned) as function `name`; returns its symbol and
/// its offset in the section.
fn function(
    obj: &mut Object<'static>,
    section: SectionId,
    name: &str,
    code: &[u8],
) -> (SymbolId, u64) {
    let offset = obj.append_section_data(section, code, 16);
    let symbol = define(
        obj,
        name,
        section,
        offset,
        code.len() as u64,
        SymbolKind::Text,
    );
    (symbol, offset)
}

fn undefined(obj: &mut Object<'static>, name: &str) -> SymbolId {
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value: 0,
        size: 0,
        kind: SymbolKind::Text,
        scope: SymbolScope::Unknown,
        weak: false,
        section: SymbolSection::Undefined,
        flags: SymbolFlags::None,
    })
}

fn relocate(
    obj: &mut Object<'static>,
    section: SectionId,
    offset: u64,
    symbol: SymbolId,
    addend: i64,
    r_type: u32,
) {
    obj.add_relocation(
        section,
        Relocation {
            offset,
            symbol,
            addend,
            flags: RelocationFlags::Elf { r_type },
        },
    )
    .unwrap();
}

/// `mov eax, 42; ret`
const RETURN_42: [u8; 6] = [0xB8, 0x2A, 0x00, 0x00, 0x00, 0xC3];

/// `sub rsp, 8; call qword ptr [rip + disp32]; add rsp, 8; ret` — the disp32 at byte 6.
const CALL_GOT: [u8; 15] = [
    0x48, 0x83, 0xEC, 0x08, // sub rsp, 8
    0xFF, 0x15, 0, 0, 0, 0, // call [rip + disp32]
    0x48, 0x83, 0xC4, 0x08, // add rsp, 8
    0xC3, // ret
];
const CALL_GOT_DISP: u64 = 6;

/// `sub rsp, 8; mov rax, [rip + disp32]; call rax; add rsp, 8; ret` — the disp32 at byte 7.
const MOV_GOT_CALL_RAX: [u8; 18] = [
    0x48, 0x83, 0xEC, 0x08, // sub rsp, 8
    0x48, 0x8B, 0x05, 0, 0, 0, 0, // mov rax, [rip + disp32]
    0xFF, 0xD0, // call rax
    0x48, 0x83, 0xC4, 0x08, // add rsp, 8
    0xC3, // ret
];
const MOV_GOT_DISP: u64 = 7;

/// `sub rsp, 8; call rel32; add eax, 1; add rsp, 8; ret` — the rel32 at byte 5.
const CALL_REL_PLUS_1: [u8; 17] = [
    0x48, 0x83, 0xEC, 0x08, // sub rsp, 8
    0xE8, 0, 0, 0, 0, // call rel32
    0x83, 0xC0, 0x01, // add eax, 1
    0x48, 0x83, 0xC4, 0x08, // add rsp, 8
    0xC3, // ret
];

/// The host function the objects call through the GOT.
extern "C" fn host_triple_plus_one(x: i64) -> i64 {
    3 * x + 1
}

/// The host symbols' addresses. A function's address is taken once: in an optimized
/// build each use of `f as usize` may name a different copy of `f`, so the tests compare
/// against the very address the loader was given.
fn host_resolver(name: &str) -> Option<usize> {
    static HOST: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    match name {
        "host_triple_plus_one" => {
            Some(*HOST.get_or_init(|| host_triple_plus_one as extern "C" fn(i64) -> i64 as usize))
        }
        _ => None,
    }
}

fn load(bytes: &[u8]) -> Result<LoadedObject, LoadError> {
    LoadedObject::load(bytes, &host_resolver)
}

/// One function returning 42.
fn object_return_42() -> Vec<u8> {
    let mut obj = new_object();
    let text = text(&mut obj);
    function(&mut obj, text, "answer", &RETURN_42);
    obj.write().unwrap()
}

/// `call_host` and `mov_call_host` both call `host_triple_plus_one` through the GOT, with
/// the given relocation types.
fn object_got_calls(call_type: u32, mov_type: u32) -> Vec<u8> {
    let mut obj = new_object();
    let text = text(&mut obj);
    let host = undefined(&mut obj, "host_triple_plus_one");
    let (_, at) = function(&mut obj, text, "call_host", &CALL_GOT);
    relocate(&mut obj, text, at + CALL_GOT_DISP, host, -4, call_type);
    let (_, at) = function(&mut obj, text, "mov_call_host", &MOV_GOT_CALL_RAX);
    relocate(&mut obj, text, at + MOV_GOT_DISP, host, -4, mov_type);
    obj.write().unwrap()
}

const VALUE: u64 = 0xDEAD_BEEF_1234_5678;

/// `answer` (returns 42), `value` (a u64 in .rodata), `table` in .data.rel.ro holding
/// [&answer, &value, &value + 4] via R_X86_64_64, and `load_value` reading `value` with a
/// PC32 `lea`.
fn object_rodata() -> Vec<u8> {
    let mut obj = new_object();
    let text = text(&mut obj);
    let (answer, _) = function(&mut obj, text, "answer", &RETURN_42);

    let rodata = obj.add_section(Vec::new(), b".rodata".to_vec(), SectionKind::ReadOnlyData);
    let value_at = obj.append_section_data(rodata, &VALUE.to_le_bytes(), 8);
    let value = define(&mut obj, "value", rodata, value_at, 8, SymbolKind::Data);

    let relro = obj.add_section(
        Vec::new(),
        b".data.rel.ro".to_vec(),
        SectionKind::ReadOnlyDataWithRel,
    );
    let table_at = obj.append_section_data(relro, &[0; 24], 8);
    define(&mut obj, "table", relro, table_at, 24, SymbolKind::Data);
    relocate(&mut obj, relro, table_at, answer, 0, elf::R_X86_64_64);
    relocate(&mut obj, relro, table_at + 8, value, 0, elf::R_X86_64_64);
    relocate(&mut obj, relro, table_at + 16, value, 4, elf::R_X86_64_64);

    // lea rax, [rip + disp32]; mov rax, [rax]; ret
    let code = [0x48, 0x8D, 0x05, 0, 0, 0, 0, 0x48, 0x8B, 0x00, 0xC3];
    let (_, at) = function(&mut obj, text, "load_value", &code);
    relocate(&mut obj, text, at + 3, value, -4, elf::R_X86_64_PC32);
    obj.write().unwrap()
}

/// `answer` and `answer_plus_1` calling it with a rel32 of type `r_type`; with
/// `via_section`, the relocation names the section symbol of .text plus an addend.
fn object_direct_call(r_type: u32, via_section: bool) -> Vec<u8> {
    let mut obj = new_object();
    let text = text(&mut obj);
    let (answer, answer_at) = function(&mut obj, text, "answer", &RETURN_42);
    let (_, at) = function(&mut obj, text, "answer_plus_1", &CALL_REL_PLUS_1);
    if via_section {
        let section = obj.section_symbol(text);
        relocate(
            &mut obj,
            text,
            at + 5,
            section,
            answer_at as i64 - 4,
            r_type,
        );
    } else {
        relocate(&mut obj, text, at + 5, answer, -4, r_type);
    }
    obj.write().unwrap()
}

/// Every kind of content the loader supports in one object.
fn object_everything() -> Vec<u8> {
    let mut obj = new_object();
    let text = text(&mut obj);
    let host = undefined(&mut obj, "host_triple_plus_one");
    let (answer, _) = function(&mut obj, text, "answer", &RETURN_42);
    let (_, at) = function(&mut obj, text, "call_host", &CALL_GOT);
    relocate(
        &mut obj,
        text,
        at + CALL_GOT_DISP,
        host,
        -4,
        elf::R_X86_64_GOTPCRELX,
    );
    let (_, at) = function(&mut obj, text, "answer_plus_1", &CALL_REL_PLUS_1);
    relocate(&mut obj, text, at + 5, answer, -4, elf::R_X86_64_PLT32);
    let relro = obj.add_section(
        Vec::new(),
        b".data.rel.ro".to_vec(),
        SectionKind::ReadOnlyDataWithRel,
    );
    let table_at = obj.append_section_data(relro, &[0; 16], 8);
    define(&mut obj, "table", relro, table_at, 16, SymbolKind::Data);
    relocate(&mut obj, relro, table_at, answer, 0, elf::R_X86_64_64);
    relocate(&mut obj, relro, table_at + 8, host, 0, elf::R_X86_64_64);
    obj.write().unwrap()
}

/// A real `cranelift-object` 0.135 object (x86-64, `is_pic = true`, `opt_level = speed`):
///
/// ```text
/// import fn host_triple_plus_one(i64) -> i64
/// export data table: [u8; 16] (explicit zero bytes, so .data.rel.ro) =
///     [&host_triple_plus_one, &entry]                     ; two R_X86_64_64
/// export fn entry(x: i64) -> i64:
///     v = call host_triple_plus_one(x)                    ; R_X86_64_GOTPCREL
///     w = call_indirect load(symbol_value(table))(v)      ; R_X86_64_GOTPCREL
///     r = call_indirect func_addr(host_triple_plus_one)(w); R_X86_64_GOTPCREL
///     return r
/// ```
///
/// (`define_zeroinit` would have put `table` in a writable `.bss`, which the loader rejects.)
const CRANELIFT_PIC: &[u8] = include_bytes!("data/cranelift_pic.o");

// ---------------------------------------------------------------------------------------
// Loading and calling (x86-64 hosts)

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use super::*;

    /// # Safety
    /// `object` must define `name` as a function of this signature.
    unsafe fn function_0(object: &LoadedObject, name: &str) -> extern "C" fn() -> i32 {
        let address = object.symbol(name).expect("symbol defined");
        // SAFETY: the caller promises the signature; the code lives as long as `object`
        // within these tests.
        unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(address) }
    }

    /// # Safety
    /// `object` must define `name` as a function of this signature.
    unsafe fn function_1(object: &LoadedObject, name: &str) -> extern "C" fn(i64) -> i64 {
        let address = object.symbol(name).expect("symbol defined");
        // SAFETY: as above.
        unsafe { std::mem::transmute::<*const u8, extern "C" fn(i64) -> i64>(address) }
    }

    #[test]
    fn returns_42() {
        let object = load(&object_return_42()).unwrap();
        assert_eq!(object.len(), 4096);
        assert!(object.symbol("missing").is_none());
        // SAFETY: `answer` is `mov eax, 42; ret`.
        let answer = unsafe { function_0(&object, "answer") };
        assert_eq!(answer(), 42);
    }

    #[test]
    fn calls_host_function_through_got() {
        for (call_type, mov_type) in [
            (elf::R_X86_64_GOTPCRELX, elf::R_X86_64_REX_GOTPCRELX),
            (elf::R_X86_64_GOTPCREL, elf::R_X86_64_GOTPCREL),
        ] {
            let object = load(&object_got_calls(call_type, mov_type)).unwrap();
            // SAFETY: both functions are `extern "C" fn(i64) -> i64` forwarding to the host.
            let (call, mov_call) = unsafe {
                (
                    function_1(&object, "call_host"),
                    function_1(&object, "mov_call_host"),
                )
            };
            assert_eq!(call(5), 16);
            assert_eq!(call(-7), -20);
            assert_eq!(mov_call(10), 31);

            // Both relocations name the same symbol: one GOT entry, holding its address.
            let entry = |function: &str, disp_at: u64| {
                let code = object.symbol(function).unwrap();
                // SAFETY: the disp32 lies within the function's code, in the mapping.
                let disp = unsafe { code.add(disp_at as usize).cast::<i32>().read_unaligned() };
                code.wrapping_add(disp_at as usize + 4)
                    .wrapping_offset(disp as isize)
            };
            let got = entry("call_host", CALL_GOT_DISP);
            assert_eq!(got, entry("mov_call_host", MOV_GOT_DISP));
            // SAFETY: the GOT entry lies in the mapping, 8-byte aligned.
            let held = unsafe { got.cast::<usize>().read() };
            assert_eq!(held, host_resolver("host_triple_plus_one").unwrap());
        }
    }

    #[test]
    fn rodata_pointers_are_relocated() {
        let object = load(&object_rodata()).unwrap();
        let table = object.symbol("table").unwrap().cast::<usize>();
        let answer = object.symbol("answer").unwrap();
        let value = object.symbol("value").unwrap();
        // SAFETY: `table` holds three pointers in the mapping.
        let entries = unsafe { [table.read(), table.add(1).read(), table.add(2).read()] };
        assert_eq!(entries[0], answer as usize);
        assert_eq!(entries[1], value as usize);
        assert_eq!(entries[2], value as usize + 4);
        // SAFETY: `value` is a u64 in the mapping; the table's first entry is `answer`.
        unsafe {
            assert_eq!((entries[1] as *const u64).read(), VALUE);
            let f = std::mem::transmute::<usize, extern "C" fn() -> i32>(entries[0]);
            assert_eq!(f(), 42);
            let load_value = std::mem::transmute::<*const u8, extern "C" fn() -> u64>(
                object.symbol("load_value").unwrap(),
            );
            assert_eq!(load_value(), VALUE);
        }
    }

    #[test]
    fn direct_calls_within_the_object() {
        for r_type in [elf::R_X86_64_PC32, elf::R_X86_64_PLT32] {
            for via_section in [false, true] {
                let object = load(&object_direct_call(r_type, via_section)).unwrap();
                // SAFETY: `answer_plus_1` calls `answer` and adds one.
                let f = unsafe { function_0(&object, "answer_plus_1") };
                assert_eq!(f(), 43, "type {r_type}, via section {via_section}");
            }
        }
    }

    #[test]
    fn everything_together_and_across_threads() {
        let object = std::sync::Arc::new(load(&object_everything()).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let object = object.clone();
                std::thread::spawn(move || {
                    // SAFETY: signatures as built by `object_everything`.
                    let (call, plus_1) = unsafe {
                        (
                            function_1(&object, "call_host"),
                            function_0(&object, "answer_plus_1"),
                        )
                    };
                    (call(i), plus_1())
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), (3 * i as i64 + 1, 43));
        }
        let table = object.symbol("table").unwrap().cast::<usize>();
        // SAFETY: `table` holds two pointers.
        let host = unsafe { table.add(1).read() };
        assert_eq!(host, host_resolver("host_triple_plus_one").unwrap());
    }

    #[test]
    fn real_cranelift_object_runs() {
        let object = load(CRANELIFT_PIC).unwrap();
        // SAFETY: `entry` is `extern "C" fn(i64) -> i64` (see `CRANELIFT_PIC`).
        let entry = unsafe { function_1(&object, "entry") };
        // 2 -> 7 -> 22 -> 67
        assert_eq!(entry(2), 67);
        let table = object.symbol("table").unwrap().cast::<usize>();
        // SAFETY: `table` holds two pointers.
        let entries = unsafe { [table.read(), table.add(1).read()] };
        assert_eq!(entries[0], host_resolver("host_triple_plus_one").unwrap());
        assert_eq!(entries[1], object.symbol("entry").unwrap() as usize);
    }

    #[test]
    fn resolver_is_asked_once_per_symbol() {
        let calls = std::cell::Cell::new(0);
        let resolve = |name: &str| {
            calls.set(calls.get() + 1);
            host_resolver(name)
        };
        LoadedObject::load(&object_everything(), &resolve).unwrap();
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn undefined_symbol_is_named() {
        let err = LoadedObject::load(&object_got_calls(9, 9), &|_| None).unwrap_err();
        assert!(
            matches!(&err, LoadError::UndefinedSymbol { name } if name == "host_triple_plus_one"),
            "{err:?}"
        );
        assert!(err.to_string().contains("host_triple_plus_one"), "{err}");
    }

    #[test]
    fn unsupported_relocation_is_named() {
        let mut obj = new_object();
        let text = text(&mut obj);
        let (answer, at) = function(&mut obj, text, "f", &[0x90; 16]);
        relocate(&mut obj, text, at, answer, 0, elf::R_X86_64_GOTOFF64);
        let err = load(&obj.write().unwrap()).unwrap_err();
        assert!(
            matches!(
                &err,
                LoadError::UnsupportedRelocation { section, offset: 0, kind: 25 } if section == ".text"
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("R_X86_64_GOTOFF64"), "{err}");
    }

    #[test]
    fn relocations_of_unloaded_sections_are_ignored() {
        let mut obj = new_object();
        let text = text(&mut obj);
        let (answer, _) = function(&mut obj, text, "answer", &RETURN_42);
        let debug = obj.add_section(Vec::new(), b".debug_info".to_vec(), SectionKind::Debug);
        obj.append_section_data(debug, &[0; 16], 1);
        relocate(&mut obj, debug, 0, answer, 0, elf::R_X86_64_GOTOFF64);
        let object = load(&obj.write().unwrap()).unwrap();
        // SAFETY: `answer` returns 42.
        assert_eq!(unsafe { function_0(&object, "answer") }(), 42);
    }

    #[test]
    fn relocation_past_section_end_is_rejected() {
        let mut obj = new_object();
        let text = text(&mut obj);
        let (answer, _) = function(&mut obj, text, "answer", &RETURN_42);
        relocate(&mut obj, text, 4, answer, 0, elf::R_X86_64_PC32);
        let err = load(&obj.write().unwrap()).unwrap_err();
        assert!(matches!(err, LoadError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        for (r_type, value) in [
            (elf::R_X86_64_PC32, 0x7000_0000_0000_0000),
            (elf::R_X86_64_32, 0x1_0000_0000),
            (elf::R_X86_64_32S, 0x8000_0000),
        ] {
            let mut obj = new_object();
            let text = text(&mut obj);
            function(&mut obj, text, "f", &[0x90; 8]);
            let far = obj.add_symbol(Symbol {
                name: b"far".to_vec(),
                value,
                size: 0,
                kind: SymbolKind::Data,
                scope: SymbolScope::Linkage,
                weak: false,
                section: SymbolSection::Absolute,
                flags: SymbolFlags::None,
            });
            relocate(&mut obj, text, 0, far, 0, r_type);
            let err = load(&obj.write().unwrap()).unwrap_err();
            assert!(
                matches!(&err, LoadError::RelocationOutOfRange { section, offset: 0 } if section == ".text"),
                "type {r_type}: {err:?}"
            );
        }
    }

    #[test]
    fn writable_sections_are_rejected() {
        for (kind, name) in [
            (SectionKind::Data, ".data"),
            (SectionKind::UninitializedData, ".bss"),
        ] {
            let mut obj = new_object();
            let text = text(&mut obj);
            function(&mut obj, text, "answer", &RETURN_42);
            let data = obj.add_section(Vec::new(), name.as_bytes().to_vec(), kind);
            if kind == SectionKind::Data {
                obj.append_section_data(data, &[1, 2, 3, 4], 4);
            } else {
                obj.append_section_bss(data, 16, 8);
            }
            let err = load(&obj.write().unwrap()).unwrap_err();
            assert!(
                matches!(&err, LoadError::UnsupportedSection { name: n, .. } if n == name),
                "{err:?}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn alignment_is_respected_and_bounded() {
        let mut obj = new_object();
        let text = text(&mut obj);
        function(&mut obj, text, "answer", &RETURN_42);
        let rodata = obj.add_section(Vec::new(), b".rodata".to_vec(), SectionKind::ReadOnlyData);
        let at = obj.append_section_data(rodata, &[7; 3], 4096);
        define(&mut obj, "page", rodata, at, 3, SymbolKind::Data);
        let object = load(&obj.write().unwrap()).unwrap();
        assert_eq!(object.symbol("page").unwrap() as usize % 4096, 0);
        assert_eq!(object.len(), 8192);

        let mut obj = new_object();
        let rodata = obj.add_section(Vec::new(), b".rodata".to_vec(), SectionKind::ReadOnlyData);
        obj.append_section_data(rodata, &[7; 3], 8192);
        let err = load(&obj.write().unwrap()).unwrap_err();
        assert!(
            matches!(&err, LoadError::UnsupportedSection { name, .. } if name == ".rodata"),
            "{err:?}"
        );
    }

    #[test]
    fn empty_object_loads() {
        let object = load(&new_object().write().unwrap()).unwrap();
        assert_eq!(object.len(), 4096);
        assert!(object.symbol("anything").is_none());
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[test]
fn other_hosts_report_unsupported_arch() {
    let err = load(&object_return_42()).unwrap_err();
    assert!(matches!(err, LoadError::UnsupportedArch { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Errors on any host

#[test]
fn non_elf_bytes_are_rejected() {
    for bytes in [&b""[..], b"\x7fEL", b"hello, world", &[0; 64]] {
        let err = load(bytes).unwrap_err();
        assert!(matches!(err, LoadError::NotElf), "{err:?}");
    }
}

#[test]
fn other_architectures_are_rejected() {
    for (architecture, endian, found) in [
        (Architecture::I386, Endianness::Little, "32-bit"),
        (Architecture::Aarch64, Endianness::Little, "machine 183"),
        (Architecture::PowerPc64, Endianness::Big, "big-endian"),
    ] {
        let mut obj = Object::new(BinaryFormat::Elf, architecture, endian);
        let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        obj.append_section_data(text, &[0xC3], 1);
        let err = load(&obj.write().unwrap()).unwrap_err();
        assert!(
            matches!(&err, LoadError::UnsupportedArch { found: f } if f.contains(found)),
            "{architecture:?}: {err:?}"
        );
    }
}

#[test]
fn shared_objects_are_rejected() {
    let mut bytes = object_return_42();
    bytes[16..18].copy_from_slice(&elf::ET_DYN.to_le_bytes());
    let err = load(&bytes).unwrap_err();
    assert!(
        matches!(err, LoadError::NotRelocatable { e_type: 3 }),
        "{err:?}"
    );
}

#[test]
fn every_truncation_is_an_error() {
    for bytes in [object_everything(), object_rodata(), CRANELIFT_PIC.to_vec()] {
        for len in 0..bytes.len() {
            assert!(
                load(&bytes[..len]).is_err(),
                "prefix of {len} of {} bytes loaded",
                bytes.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mutated objects: `load` returns, Ok or Err, without panicking. No code is called.

fn valid_objects() -> Vec<Vec<u8>> {
    vec![
        object_return_42(),
        object_got_calls(elf::R_X86_64_GOTPCRELX, elf::R_X86_64_REX_GOTPCRELX),
        object_rodata(),
        object_direct_call(elf::R_X86_64_PLT32, true),
        object_everything(),
        CRANELIFT_PIC.to_vec(),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at (position mod length) with a non-zero mask.
    Flip(usize, u8),
    /// Overwrite 1, 2, 4 or 8 little-endian bytes at (position mod length).
    Overwrite(usize, u64, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u64),
                Just(u64::MAX),
                Just(0x8000_0000),
                Just(0x4000_0000),
                any::<u64>(),
                0u64..64
            ],
            prop_oneof![Just(1usize), Just(2), Just(4), Just(8)]
        )
            .prop_map(|(at, value, width)| Mutation::Overwrite(at, value, width)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn mutated_objects_never_panic(
        which in 0usize..6,
        mutations in prop::collection::vec(mutation(), 1..12),
    ) {
        let mut bytes = valid_objects().swap_remove(which);
        let len = bytes.len();
        for m in &mutations {
            match *m {
                Mutation::Flip(at, mask) => bytes[at % len] ^= mask,
                Mutation::Overwrite(at, value, width) => {
                    let at = at % len;
                    let end = (at + width).min(len);
                    bytes[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
                }
            }
        }
        // Either outcome is fine; a panic fails the test. Nothing is executed.
        let _ = load(&bytes);
    }
}
