fn main() {
    // Passes ESP-IDF's build settings (linker arguments, cfgs) to this crate.
    embuild::espidf::sysenv::output();
}
