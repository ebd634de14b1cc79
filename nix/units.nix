# kato's systemd settings as plain Nix values (builtins only, no nixpkgs):
# the NixOS module (nix/module.nix) and the home-manager module
# (nix/home-manager.nix) build their units from these, and ci/nix-check
# evaluates them here, without nixpkgs, and compares them directive by
# directive with systemd/kato.service, systemd/kato@.service and
# systemd/kato-user.service.
rec {
  # Provider name -> default roots relative to the home directory.
  providerRoots = import ./provider-roots.nix;

  # A path directive's value, quoted for systemd: a path may hold a space
  # (".config/Code - Insiders"), and a NixOS or home-manager list becomes
  # one unquoted line per item.
  quote = p: "\"${p}\"";

  # Every provider's default roots under `home`.
  homeRoots = home: builtins.mapAttrs (_: map (r: "${home}/${r}")) providerRoots;

  # Same directives and values as systemd/kato.service and kato@.service.
  hardening = {
    UMask = "0077";
    LimitNOFILE = 65536;
    LimitCORE = 0;

    ProtectSystem = "strict";
    ProtectHome = "tmpfs";
    PrivateTmp = true;
    PrivateDevices = true;
    DevicePolicy = "closed";
    PrivateMounts = true;
    PrivateIPC = true;
    PrivateUsers = true;
    ProtectProc = "invisible";
    ProcSubset = "pid";
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;

    NoNewPrivileges = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    RestrictSUIDSGID = true;
    KeyringMode = "private";
    RemoveIPC = true;

    PrivateNetwork = true;
    RestrictAddressFamilies = "AF_UNIX";
    IPAddressDeny = "any";

    RestrictNamespaces = true;
    RestrictRealtime = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;

    # Landlock and seccomp calls belong to no group in systemd 252..257 and
    # must be listed, or kato cannot apply its own sandbox.
    SystemCallArchitectures = "native";
    SystemCallFilter = [
      "@system-service"
      "landlock_create_ruleset landlock_add_rule landlock_restrict_self seccomp"
      "~@privileged @resources"
    ];
    SystemCallErrorNumber = "EPERM";
  };

  # What a user manager can apply: the user unit (systemd/kato-user.service)
  # has neither DevicePolicy= nor LimitNOFILE= (a user manager cannot raise
  # it).
  userHardening = removeAttrs hardening [ "DevicePolicy" "LimitNOFILE" ];

  # One system instance per user, as systemd/kato@.service instantiated for
  # `name`: runs as `user`, binds the provider roots read-only ("-": missing
  # ones are skipped) and the export roots read-write.
  instanceService =
    { name
    , user
    , exe
    , providerRoots
    , exportRoots
    }:
    hardening
    // {
      Type = "exec";
      ExecStart = "${exe} run";
      Restart = "on-failure";
      RestartSec = "5s";
      TimeoutStopSec = "30s";
      SyslogIdentifier = "kato-${name}";

      User = user;
      ConfigurationDirectory = "kato/${name}";
      ConfigurationDirectoryMode = "0755";
      StateDirectory = "kato/${name}";
      StateDirectoryMode = "0700";
      RuntimeDirectory = "kato/${name}";
      RuntimeDirectoryMode = "0700";
      LogsDirectory = "kato/${name}";
      LogsDirectoryMode = "0700";

      BindReadOnlyPaths = map (p: quote "-${p}") providerRoots;
      BindPaths = map (p: quote "-${p}") exportRoots;
    };

  # The user unit's [Service] section (systemd/kato-user.service), for a
  # user manager (home-manager's systemd.user.services).
  userService =
    { exe
    , providerRoots
    , exportRoots
    }:
    userHardening
    // {
      Type = "exec";
      ExecStart = "${exe} run";
      Restart = "on-failure";
      RestartSec = "5s";
      TimeoutStopSec = "30s";
      SyslogIdentifier = "kato";

      ConfigurationDirectory = "kato";
      StateDirectory = "kato";
      StateDirectoryMode = "0700";
      RuntimeDirectory = "kato";
      RuntimeDirectoryMode = "0700";
      LogsDirectory = "kato";
      LogsDirectoryMode = "0700";

      BindReadOnlyPaths = map (p: quote "-${p}") providerRoots;
      BindPaths = map quote exportRoots;
    };
}
