//! The registry's generator: from the list of protocols in [`super`] (one line each), the enums
//! that name them and the exhaustive matches that dispatch to each one's [`Protocol`]
//! implementation. Nothing here names a protocol.

/// Generates, from `Variant => module::Type` lines:
/// - the protocols' modules (`pub mod module;`, the directory beside this file);
/// - [`AppProto`](super::AppProto) (`Unknown`, the protocols in order, `Failed`) and its names;
/// - [`AppEvent`](super::AppEvent) (borrowed events) and [`OwnedEvent`](super::OwnedEvent)
///   (the batch's copies), with the spare copies a batch keeps ([`Spares`](super::Spares));
/// - the per-session parser states, the per-worker counters ([`ProtoCounters`](super::ProtoCounters));
/// - the rule buffers' numbering ([`Registered::BUF_BASE`](super::Registered));
/// - the dispatch functions the app layer, the rule engine and the exporter call.
macro_rules! registry {
    ($($V:ident => $m:ident :: $T:ident,)*) => {
        $(pub mod $m;)*

        /// The application protocol of a flow.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
        #[repr(u8)]
        pub enum AppProto {
            /// No payload yet, or no session (not tracked).
            #[default]
            Unknown = 0,
            $($V,)*
            /// Payload was seen and no parser recognised it.
            Failed,
        }

        impl AppProto {
            pub const COUNT: usize = AppProto::Failed as usize + 1;
            pub const ALL: [AppProto; Self::COUNT] = [AppProto::Unknown, $(AppProto::$V,)* AppProto::Failed];
            /// The protocols a parser identifies, in registry order.
            pub const PROTOCOLS: [AppProto; Self::COUNT - 2] = [$(AppProto::$V,)*];

            /// The EVE name (`None` for unknown: no `app_proto` is written).
            pub fn name(self) -> Option<&'static str> {
                match self {
                    AppProto::Unknown => None,
                    $(AppProto::$V => Some(<$m::$T as Protocol>::INFO.name),)*
                    AppProto::Failed => Some("failed"),
                }
            }

            /// The protocol a rule header names (`http`, `dns`...).
            pub fn from_rule_name(k: &str) -> Option<AppProto> {
                $(if <$m::$T as Protocol>::INFO.rule_names.contains(&k) {
                    return Some(AppProto::$V);
                })*
                None
            }

            /// The IP protocols its rules match (none for unknown and failed).
            pub fn ip_protos(self) -> &'static [u8] {
                match self {
                    AppProto::Unknown | AppProto::Failed => &[],
                    $(AppProto::$V => <$m::$T as Protocol>::INFO.ip_protos,)*
                }
            }

            /// Its rule buffers, and the number of the first.
            pub fn buffers(self) -> (&'static [crate::rules::BufSpec], u8) {
                match self {
                    AppProto::Unknown | AppProto::Failed => (&[], 0),
                    $(AppProto::$V => (<$m::$T as Protocol>::INFO.buffers, <$m::$T as Registered>::BUF_BASE),)*
                }
            }
        }

        /// Where each protocol's rule buffers start (after the payload, buffer 0).
        const BUF_BASES: [u8; AppProto::COUNT - 2] = {
            let lens = [$(<$m::$T as Protocol>::INFO.buffers.len(),)*];
            let mut out = [0u8; AppProto::COUNT - 2];
            let mut next = 1usize;
            let mut i = 0;
            while i < lens.len() {
                out[i] = next as u8;
                next += lens[i];
                i += 1;
            }
            assert!(next <= 255, "too many rule buffers");
            out
        };

        /// How many rule buffers there are, the payload included.
        pub const BUF_COUNT: usize = 1 $(+ <$m::$T as Protocol>::INFO.buffers.len())*;

        $(impl Registered for $m::$T {
            const ID: AppProto = AppProto::$V;
            const BUF_BASE: u8 = BUF_BASES[AppProto::$V as usize - 1];
        })*

        /// An application-layer event, borrowed from the parser that made it; the sink formats
        /// or copies what it needs before returning.
        #[derive(Debug, Clone, Copy)]
        pub enum AppEvent<'a> {
            $($V(<$m::$T as Protocol>::Event<'a>),)*
        }

        impl AppEvent<'_> {
            pub fn proto(&self) -> AppProto {
                match self {
                    $(AppEvent::$V(_) => AppProto::$V,)*
                }
            }

            /// Appends the event's EVE lines; returns how many.
            pub fn write_eve(&self, out: &mut Vec<u8>, m: &crate::flow::EventMeta) -> usize {
                match self {
                    $(AppEvent::$V(e) => <$m::$T as Protocol>::write_eve(out, m, e),)*
                }
            }

            /// Appends the event's CEF line body.
            pub fn write_cef(&self, out: &mut Vec<u8>, m: &crate::flow::EventMeta) {
                match self {
                    $(AppEvent::$V(e) => <$m::$T as Protocol>::write_cef(out, m, e),)*
                }
            }

            /// Puts the event's rule buffers and runs the transaction rules.
            pub fn inspect<I: Inspect>(&self, i: &mut I) {
                match self {
                    $(AppEvent::$V(e) => <$m::$T as Protocol>::inspect(e, i),)*
                }
            }

            /// The domain and fingerprint indicators the event carries.
            pub fn indicators(&self, want: Wanted, f: &mut dyn FnMut(crate::rules::ioc::IocKind, &[u8])) {
                match self {
                    $(AppEvent::$V(e) => <$m::$T as Protocol>::indicators(e, want, f),)*
                }
            }
        }

        /// An app-layer event as a batch carries it: a copy of what the parser showed (the
        /// exporter formats it; formatting is several times the copy's cost, and this keeps it
        /// off the worker).
        #[derive(Debug)]
        pub enum OwnedEvent {
            $($V(<$m::$T as Protocol>::Owned),)*
        }

        impl OwnedEvent {
            pub fn proto(&self) -> AppProto {
                match self {
                    $(OwnedEvent::$V(_) => AppProto::$V,)*
                }
            }

            /// The event it holds, or `None` when it cannot be shown (nothing is written).
            pub fn view(&self) -> Option<AppEvent<'_>> {
                match self {
                    $(OwnedEvent::$V(o) => <$m::$T as Protocol>::view(o).map(AppEvent::$V),)*
                }
            }
        }

        /// Emptied event copies, kept with their buffers for the next events.
        #[derive(Debug, Default)]
        pub struct Spares {
            $($m: Vec<<$m::$T as Protocol>::Owned>,)*
        }

        impl Spares {
            /// A copy of `ev`, in a spare when there is one.
            pub fn copy(&mut self, ev: &AppEvent<'_>) -> OwnedEvent {
                match ev {
                    $(AppEvent::$V(e) => {
                        let mut x = self.$m.pop().unwrap_or_default();
                        <$m::$T as Protocol>::copy(e, &mut x);
                        OwnedEvent::$V(x)
                    })*
                }
            }

            /// Takes a copy back for reuse.
            pub fn give_back(&mut self, o: OwnedEvent) {
                match o {
                    $(OwnedEvent::$V(x) => self.$m.push(x),)*
                }
            }
        }

        /// Every protocol's parser state of one session (only the identified protocol's is
        /// used; the others stay empty, so a reused session keeps the buffers it grew).
        #[derive(Debug, Default)]
        pub(crate) struct States {
            $($m: <$m::$T as Protocol>::State,)*
        }

        /// Every protocol's counters (per worker).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct ProtoCounters {
            $(pub $m: <$m::$T as Protocol>::Counters,)*
        }

        impl ProtoCounters {
            pub fn add(&mut self, o: &ProtoCounters) {
                $(<$m::$T as Protocol>::add(&mut self.$m, &o.$m);)*
            }

            /// The summary's parser-anomalies text: each protocol's, comma-separated.
            pub fn anomalies(&self) -> String {
                let mut s = String::new();
                $(
                    if !s.is_empty() {
                        s.push_str(", ");
                    }
                    <$m::$T as Protocol>::anomalies(&self.$m, &mut s);
                )*
                s
            }
        }

        /// TCP identification of `data` (direction `dir`'s first bytes): the first protocol
        /// that claims it, else whether any could still (too short to tell).
        pub(crate) fn registry_probe_tcp(dir: usize, data: &[u8], ports: (u16, u16)) -> Result<AppProto, bool> {
            let mut undecided = false;
            $(match <$m::$T as Protocol>::probe_tcp(dir, data, ports) {
                Some(true) => return Ok(AppProto::$V),
                None => undecided = true,
                Some(false) => {}
            })*
            Err(undecided)
        }

        /// UDP identification on a flow's first datagram.
        pub(crate) fn registry_probe_udp(dir: usize, payload: &[u8], ports: (u16, u16)) -> Option<AppProto> {
            $(if <$m::$T as Protocol>::probe_udp(dir, payload, ports) {
                return Some(AppProto::$V);
            })*
            None
        }

        impl States {
            pub(crate) fn tcp_input(&mut self, p: AppProto, i: Input<'_, '_, ProtoCounters>) -> u64 {
                match p {
                    AppProto::Unknown | AppProto::Failed => 0,
                    $(AppProto::$V => <$m::$T as Protocol>::tcp_input(&mut self.$m, i.narrow(|c| &mut c.$m)),)*
                }
            }

            pub(crate) fn udp_input(&mut self, p: AppProto, i: Input<'_, '_, ProtoCounters>) {
                match p {
                    AppProto::Unknown | AppProto::Failed => {}
                    $(AppProto::$V => <$m::$T as Protocol>::udp_input(&mut self.$m, i.narrow(|c| &mut c.$m)),)*
                }
            }

            /// Whether the protocol's parser has nothing more to read (`Failed`: nothing to read).
            pub(crate) fn is_done(&self, p: AppProto) -> bool {
                match p {
                    AppProto::Unknown => false,
                    AppProto::Failed => true,
                    $(AppProto::$V => <$m::$T as Protocol>::is_done(&self.$m),)*
                }
            }

            pub(crate) fn finish(&mut self, p: AppProto, c: &mut ProtoCounters, emit: &mut Emit<'_>) {
                match p {
                    AppProto::Unknown | AppProto::Failed => {}
                    $(AppProto::$V => <$m::$T as Protocol>::finish(&mut self.$m, &mut c.$m, emit),)*
                }
            }

            /// Only the identified protocol's parser was ever fed (a flow's protocol never
            /// changes once found), so only it needs resetting.
            pub(crate) fn reset(&mut self, p: AppProto, keep: usize) {
                match p {
                    AppProto::Unknown | AppProto::Failed => {}
                    $(AppProto::$V => {
                        Reuse::reset(&mut self.$m);
                        Reuse::trim(&mut self.$m, keep);
                    })*
                }
            }
        }
    };
}
