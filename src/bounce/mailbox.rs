//! Where reports wait: one message on standard input, an mbox, a Maildir or
//! a folder of message files, read one message at a time (an mbox streamed
//! line by line), each capped: a message over the cap is named and skipped
//! unread, so memory stays bounded whatever the mailbox holds.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One message found, or why one could not be read.
#[derive(Debug)]
pub enum Item {
    Message { raw: Vec<u8>, from: String },
    TooLarge { from: String },
    Unreadable { from: String, error: String },
}

/// The messages at a set of places, in order.
pub struct Messages {
    places: VecDeque<Place>,
    mbox: Option<Mbox>,
    cap: usize,
}

enum Place {
    Stdin,
    File(PathBuf),
}

struct Mbox {
    name: String,
    reader: Box<dyn BufRead>,
    count: usize,
    /// A `From ` line was read and its message not yet returned.
    in_message: bool,
    /// Reading failed: the rest of the mbox is given up.
    failed: bool,
}

impl Messages {
    /// The messages at `paths` (`-` is standard input), each at most `cap` bytes.
    pub fn at(paths: &[PathBuf], cap: usize) -> io::Result<Messages> {
        let mut places = VecDeque::new();
        for path in paths {
            if path.as_os_str() == "-" {
                places.push_back(Place::Stdin);
            } else if path.is_dir() {
                places.extend(folder(path)?.into_iter().map(Place::File));
            } else {
                places.push_back(Place::File(path.clone()));
            }
        }
        Ok(Messages {
            places,
            mbox: None,
            cap,
        })
    }

    fn open(&mut self, place: Place) -> Option<Item> {
        let is_stdin = matches!(place, Place::Stdin);
        let (name, reader): (String, Box<dyn BufRead>) = match place {
            Place::Stdin => ("standard input".into(), Box::new(BufReader::new(io::stdin()))),
            Place::File(path) => {
                let name = path.display().to_string();
                let file = match File::open(&path) {
                    Ok(file) => file,
                    Err(e) => return Some(unreadable(name, e)),
                };
                (name, Box::new(BufReader::new(file)))
            }
        };
        let mut reader = reader;
        let is_mbox = match reader.fill_buf() {
            Ok(head) => head.starts_with(b"From "),
            Err(e) => return Some(unreadable(name, e)),
        };
        if is_mbox {
            self.mbox = Some(Mbox {
                name,
                reader,
                count: 0,
                in_message: false,
                failed: false,
            });
            return None;
        }
        let mut raw = Vec::new();
        match (&mut reader).take(self.cap as u64 + 1).read_to_end(&mut raw) {
            Ok(_) if raw.len() > self.cap => {
                // The rest of a pipe is read and dropped, so its writer sees
                // the message taken (memory holds no more than the cap).
                if is_stdin {
                    let _ = io::copy(&mut reader, &mut io::sink());
                }
                Some(Item::TooLarge { from: name })
            }
            Ok(_) => Some(Item::Message { raw, from: name }),
            Err(e) => Some(unreadable(name, e)),
        }
    }
}

impl Iterator for Messages {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(mbox) = &mut self.mbox {
                match mbox.next_message(self.cap) {
                    Some(item) => return Some(item),
                    None => self.mbox = None,
                }
            }
            let place = self.places.pop_front()?;
            if let Some(item) = self.open(place) {
                return Some(item);
            }
        }
    }
}

impl Mbox {
    /// The next message: the lines after a `From ` line (at the start or
    /// after a blank line) up to the next such line or the end, with
    /// mboxrd's `>From ` quoting undone.
    fn next_message(&mut self, cap: usize) -> Option<Item> {
        if self.failed {
            return None;
        }
        let mut raw = Vec::new();
        let mut line = Vec::new();
        let mut too_large = false;
        let mut blank_before = !self.in_message;
        let mut ended_by_separator = false;
        loop {
            line.clear();
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(unreadable(self.name.clone(), e));
                }
            }
            if blank_before && line.starts_with(b"From ") {
                if self.in_message {
                    ended_by_separator = true;
                    break;
                }
                self.in_message = true;
                blank_before = false;
                continue;
            }
            blank_before = line == b"\n" || line == b"\r\n";
            let unquoted = match line.iter().position(|&b| b != b'>') {
                Some(n) if n > 0 && line[n..].starts_with(b"From ") => &line[1..],
                _ => &line[..],
            };
            if too_large || raw.len() + unquoted.len() > cap {
                too_large = true;
                raw = Vec::new();
            } else {
                raw.extend_from_slice(unquoted);
            }
        }
        if !self.in_message {
            return None;
        }
        self.in_message = ended_by_separator;
        self.count += 1;
        let from = format!("{} message {}", self.name, self.count);
        Some(if too_large {
            Item::TooLarge { from }
        } else {
            Item::Message { raw, from }
        })
    }
}

fn unreadable(from: String, error: io::Error) -> Item {
    Item::Unreadable {
        from,
        error: error.to_string(),
    }
}

/// The message files of a folder, in name order: a Maildir's `new` and
/// `cur` (never `tmp`, where messages are still being written), else the
/// folder's own files.
fn folder(path: &Path) -> io::Result<Vec<PathBuf>> {
    let maildir = path.join("cur").is_dir() && path.join("new").is_dir();
    let folders = if maildir {
        vec![path.join("new"), path.join("cur")]
    } else {
        vec![path.to_path_buf()]
    };
    let mut files = Vec::new();
    for folder in folders {
        let mut here: Vec<PathBuf> = std::fs::read_dir(&folder)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        here.sort();
        files.extend(here);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &Path, name: &str, cap: usize) -> Vec<Item> {
        Messages::at(&[dir.join(name)], cap).unwrap().collect()
    }

    #[test]
    fn an_mbox_splits_at_from_lines_and_unquotes_them() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = "From a@example.org Mon Dec  7 01:00:00 2026\nSubject: one\n\n>From the start\nbody\n\n\
                    From b@example.org Mon Dec  7 02:00:00 2026\nSubject: two\n\n"
            .to_string()
            + &"x".repeat(200)
            + "\n\nFrom c@example.org Mon Dec  7 03:00:00 2026\nSubject: three\n\nfirst line\nFrom inside a paragraph stays\n";
        std::fs::write(dir.path().join("box"), mbox).unwrap();
        let items = read(dir.path(), "box", 120);
        assert_eq!(items.len(), 3, "{items:?}");
        let Item::Message { raw, from } = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(String::from_utf8_lossy(raw), "Subject: one\n\nFrom the start\nbody\n\n");
        assert!(from.ends_with("box message 1"), "{from}");
        assert!(matches!(&items[1], Item::TooLarge { from } if from.ends_with("message 2")));
        let Item::Message { raw, .. } = &items[2] else {
            panic!("{items:?}")
        };
        assert!(String::from_utf8_lossy(raw).contains("From inside a paragraph stays"));
    }

    #[test]
    fn a_maildir_reads_new_and_cur_but_not_tmp_and_big_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("new/1"), "Subject: new\n\nhi\n").unwrap();
        std::fs::write(dir.path().join("cur/2:2,S"), "Subject: cur\n\nhi\n").unwrap();
        std::fs::write(dir.path().join("cur/3:2,S"), "x".repeat(100)).unwrap();
        std::fs::write(dir.path().join("tmp/4"), "Subject: half written\n").unwrap();
        let items: Vec<Item> = Messages::at(&[dir.path().to_path_buf()], 50).unwrap().collect();
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(matches!(&items[0], Item::Message { raw, .. } if raw.starts_with(b"Subject: new")));
        assert!(matches!(&items[1], Item::Message { raw, .. } if raw.starts_with(b"Subject: cur")));
        assert!(matches!(&items[2], Item::TooLarge { .. }));
        let missing: Vec<Item> = Messages::at(&[dir.path().join("nope.eml")], 50).unwrap().collect();
        assert!(matches!(&missing[..], [Item::Unreadable { .. }]), "{missing:?}");
    }
}
