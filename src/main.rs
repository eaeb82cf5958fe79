fn main() {
    print!("{}", headroom::api::crd_yaml().unwrap());
}
