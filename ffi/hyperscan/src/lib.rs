//! Hyperscan (the system's libhs, >= 5.2, found with pkg-config) for literal multi-pattern
//! scanning: a compiled database ([`HsDatabase`], immutable, shared by every worker) and a
//! per-thread scratch ([`HsScratch`]). Only the five functions this needs are declared, by
//! hand: the ABI is Hyperscan's stable C API. Without libhs at build time every constructor
//! says so and callers keep their own scanner.
//!
//! One of spinewatch's FFI crates (the only ones with `unsafe`): every `unsafe` block says why
//! it is sound in a `// SAFETY:` line.

use std::fmt;

#[cfg(has_hyperscan)]
mod raw {
    use std::os::raw::{c_char, c_int, c_uint, c_ulonglong, c_void};

    #[repr(C)]
    pub struct hs_database_t {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub struct hs_scratch_t {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub struct hs_compile_error_t {
        pub message: *mut c_char,
        pub expression: c_int,
    }
    pub type MatchHandler =
        extern "C" fn(id: c_uint, from: c_ulonglong, to: c_ulonglong, flags: c_uint, ctx: *mut c_void) -> c_int;

    pub const HS_SUCCESS: c_int = 0;
    pub const HS_FLAG_CASELESS: c_uint = 1;
    pub const HS_FLAG_SINGLEMATCH: c_uint = 8;
    pub const HS_MODE_BLOCK: c_uint = 1;

    #[link(name = "hs")]
    extern "C" {
        pub fn hs_compile_lit_multi(
            expressions: *const *const c_char,
            flags: *const c_uint,
            ids: *const c_uint,
            lens: *const usize,
            elements: c_uint,
            mode: c_uint,
            platform: *const c_void,
            db: *mut *mut hs_database_t,
            error: *mut *mut hs_compile_error_t,
        ) -> c_int;
        pub fn hs_free_compile_error(error: *mut hs_compile_error_t) -> c_int;
        pub fn hs_free_database(db: *mut hs_database_t) -> c_int;
        pub fn hs_alloc_scratch(db: *const hs_database_t, scratch: *mut *mut hs_scratch_t) -> c_int;
        pub fn hs_free_scratch(scratch: *mut hs_scratch_t) -> c_int;
        pub fn hs_scan(
            db: *const hs_database_t,
            data: *const c_char,
            length: c_uint,
            flags: c_uint,
            scratch: *mut hs_scratch_t,
            on_event: MatchHandler,
            context: *mut c_void,
        ) -> c_int;
    }
}

/// Why Hyperscan could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsError(pub String);

impl fmt::Display for HsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether this build links Hyperscan.
pub const AVAILABLE: bool = cfg!(has_hyperscan);

/// A compiled set of literal patterns; pattern `i` reports id `i`.
pub struct HsDatabase {
    #[cfg(has_hyperscan)]
    db: *mut raw::hs_database_t,
}

impl fmt::Debug for HsDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HsDatabase")
    }
}

// SAFETY: a Hyperscan database is immutable after compilation and documented as safe to use
// from many threads at once (each with its own scratch).
#[cfg(has_hyperscan)]
unsafe impl Send for HsDatabase {}
// SAFETY: as above: scans only read the database.
#[cfg(has_hyperscan)]
unsafe impl Sync for HsDatabase {}

/// Per-thread working memory for scanning one database.
pub struct HsScratch {
    #[cfg(has_hyperscan)]
    s: *mut raw::hs_scratch_t,
}

// SAFETY: a scratch may move between threads; it is used by one thread at a time (`&mut`).
#[cfg(has_hyperscan)]
unsafe impl Send for HsScratch {}

#[cfg(has_hyperscan)]
impl HsDatabase {
    /// Compiles literal `patterns` (bytes, not regular expressions), case-insensitive when
    /// `caseless`; each reports at most once per scan.
    pub fn literals(patterns: &[&[u8]], caseless: bool) -> Result<HsDatabase, HsError> {
        use std::os::raw::{c_char, c_uint};
        if patterns.is_empty() || patterns.iter().any(|p| p.is_empty()) {
            return Err(HsError("empty pattern list or pattern".into()));
        }
        let exprs: Vec<*const c_char> = patterns.iter().map(|p| p.as_ptr() as *const c_char).collect();
        let lens: Vec<usize> = patterns.iter().map(|p| p.len()).collect();
        let ids: Vec<c_uint> = (0..patterns.len() as c_uint).collect();
        let f = raw::HS_FLAG_SINGLEMATCH | if caseless { raw::HS_FLAG_CASELESS } else { 0 };
        let flags: Vec<c_uint> = vec![f; patterns.len()];
        let mut db: *mut raw::hs_database_t = std::ptr::null_mut();
        let mut err: *mut raw::hs_compile_error_t = std::ptr::null_mut();
        // SAFETY: the four arrays hold `patterns.len()` elements each and outlive the call;
        // `exprs[i]` points at `lens[i]` bytes (literal mode reads exactly that many); `db`
        // and `err` are valid out-pointers; a null platform means "this machine".
        let rc = unsafe {
            raw::hs_compile_lit_multi(
                exprs.as_ptr(),
                flags.as_ptr(),
                ids.as_ptr(),
                lens.as_ptr(),
                patterns.len() as c_uint,
                raw::HS_MODE_BLOCK,
                std::ptr::null(),
                &mut db,
                &mut err,
            )
        };
        if rc != raw::HS_SUCCESS {
            let msg = if err.is_null() {
                format!("hs_compile_lit_multi failed ({rc})")
            } else {
                // SAFETY: on failure `err` points at a compile error whose `message` is a
                // NUL-terminated string owned by it, freed right after it is copied.
                unsafe {
                    let m = std::ffi::CStr::from_ptr((*err).message).to_string_lossy().into_owned();
                    raw::hs_free_compile_error(err);
                    m
                }
            };
            return Err(HsError(msg));
        }
        Ok(HsDatabase { db })
    }

    /// Reports each pattern found in `data` (once per pattern).
    pub fn scan(&self, scratch: &mut HsScratch, data: &[u8], hit: &mut dyn FnMut(u32)) {
        use std::os::raw::{c_int, c_uint, c_ulonglong, c_void};
        extern "C" fn on_match(
            id: c_uint,
            _from: c_ulonglong,
            _to: c_ulonglong,
            _f: c_uint,
            ctx: *mut c_void,
        ) -> c_int {
            // SAFETY: `ctx` is the `&mut &mut dyn FnMut(u32)` passed to `hs_scan` below, alive
            // for the whole (synchronous) scan.
            let f = unsafe { &mut *(ctx as *mut &mut dyn FnMut(u32)) };
            f(id);
            0
        }
        if data.is_empty() || data.len() > u32::MAX as usize {
            return;
        }
        let mut f: &mut dyn FnMut(u32) = hit;
        // SAFETY: `self.db` is a live database and `scratch.s` a scratch allocated for it;
        // `data` is valid for `data.len()` bytes; the callback context outlives the call.
        let _ = unsafe {
            raw::hs_scan(
                self.db,
                data.as_ptr() as *const std::os::raw::c_char,
                data.len() as c_uint,
                0,
                scratch.s,
                on_match,
                &mut f as *mut &mut dyn FnMut(u32) as *mut c_void,
            )
        };
    }
}

#[cfg(has_hyperscan)]
impl HsScratch {
    /// Scratch space for scanning `db`.
    pub fn new(db: &HsDatabase) -> Result<HsScratch, HsError> {
        let mut s: *mut raw::hs_scratch_t = std::ptr::null_mut();
        // SAFETY: `db.db` is a live database; `s` is a valid out-pointer (null: allocate new).
        let rc = unsafe { raw::hs_alloc_scratch(db.db, &mut s) };
        if rc != raw::HS_SUCCESS {
            return Err(HsError(format!("hs_alloc_scratch failed ({rc})")));
        }
        Ok(HsScratch { s })
    }
}

#[cfg(has_hyperscan)]
impl Drop for HsDatabase {
    fn drop(&mut self) {
        // SAFETY: the database was allocated by hs_compile_lit_multi and is freed once here.
        unsafe {
            raw::hs_free_database(self.db);
        }
    }
}

#[cfg(has_hyperscan)]
impl Drop for HsScratch {
    fn drop(&mut self) {
        // SAFETY: the scratch was allocated by hs_alloc_scratch and is freed once here.
        unsafe {
            raw::hs_free_scratch(self.s);
        }
    }
}

#[cfg(not(has_hyperscan))]
impl HsDatabase {
    pub fn literals(_: &[&[u8]], _: bool) -> Result<HsDatabase, HsError> {
        Err(HsError("built without Hyperscan (libhyperscan-dev not found)".into()))
    }
    pub fn scan(&self, _: &mut HsScratch, _: &[u8], _: &mut dyn FnMut(u32)) {}
}

#[cfg(not(has_hyperscan))]
impl HsScratch {
    pub fn new(_: &HsDatabase) -> Result<HsScratch, HsError> {
        Err(HsError("built without Hyperscan".into()))
    }
}

#[cfg(all(test, has_hyperscan))]
mod test {
    use super::*;

    #[test]
    fn literals_found_once_each() {
        let db = HsDatabase::literals(&[b"GET ", b"evil", b"\x00\x01"], true).unwrap();
        let mut s = HsScratch::new(&db).unwrap();
        let mut got = Vec::new();
        db.scan(&mut s, b"get /EVIL evil \x00\x01", &mut |id| got.push(id));
        got.sort();
        assert_eq!(got, [0, 1, 2]);
        assert!(HsDatabase::literals(&[], true).is_err());
    }
}
