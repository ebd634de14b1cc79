# NixOS module: services.kato, a system instance with explicit roots.
#
# The unit carries the same hardening as systemd/kato.service (ci/nix-check
# compares the two). Provider roots are bound read-only and export roots
# read-write into an otherwise empty /home (ProtectHome=tmpfs), at the same
# absolute paths kato is configured with.
{ config
, lib
, pkgs
, ...
}:

let
  cfg = config.services.kato;
  toml = pkgs.formats.toml { };
  inherit (lib)
    mkEnableOption
    mkIf
    mkOption
    mkPackageOption
    types
    ;

  absolutePath = types.strMatching "/.*";
  rootsOption =
    provider:
    mkOption {
      type = types.listOf absolutePath;
      default = [ ];
      example = [ "/home/alice/.${provider}" ];
      description = "Directories kato reads ${provider} session logs from (bound read-only).";
    };

  providerRoots = lib.concatLists (lib.attrValues cfg.providerRoots);

  # Generated from the options; `settings` is merged over it.
  generated = {
    providers = lib.mapAttrs
      (_name: roots: {
        inherit roots;
        enabled = roots != [ ];
      })
      cfg.providerRoots;
    exports.allowed_roots = cfg.exportRoots;
  };
  configFile = toml.generate "kato-config.toml" (lib.recursiveUpdate generated cfg.settings);

  # Same directives and values as systemd/kato.service.
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
in
{
  options.services.kato = {
    enable = mkEnableOption "kato, a sandboxed observer of coding-agent sessions";

    package = mkPackageOption pkgs "kato" { };

    user = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "alice";
      description = ''
        Run as this existing user instead of a transient one
        (`DynamicUser=`). Useful when kato watches a single user's home
        directory and should write exports owned by that user. With the
        default (null) kato runs as a dynamic user, and access to the roots is
        granted through {option}`services.kato.supplementaryGroups`.
      '';
    };

    supplementaryGroups = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "kato-io" ];
      description = ''
        Static groups for the service, typically one that ACLs on the
        provider and export roots grant read (provider) and write (export)
        access to.
      '';
    };

    providerRoots = mkOption {
      type = types.submodule {
        options = {
          claude = rootsOption "claude";
          codex = rootsOption "codex";
          # The chats only: ~/.gemini itself also holds the CLI's
          # credentials (oauth_creds.json), settings and project registry.
          gemini = rootsOption "gemini" // {
            example = [ "/home/alice/.gemini/tmp" ];
          };
          # The logs only: ~/.copilot itself also holds the CLI's tokens
          # (config.json), settings and MCP configuration.
          copilot = rootsOption "copilot" // {
            example = [
              "/home/alice/.copilot/session-state"
              "/home/alice/.copilot/history-session-state"
            ];
          };
          # The tasks/ folders only: globalStorage holds every extension's
          # state and secrets, the extension's folder its MCP settings.
          cline = rootsOption "cline" // {
            example = [ "/home/alice/.config/Code/User/globalStorage/saoudrizwan.claude-dev/tasks" ];
          };
          # The chats only: ~/.qwen itself also holds the CLI's
          # credentials (oauth_creds.json) and settings.
          qwen = rootsOption "qwen" // {
            example = [ "/home/alice/.qwen/projects" ];
          };
          # The projects only: ~/.cursor also holds mcp.json (MCP servers,
          # often with tokens), cli-config.json and the chat stores.
          cursor = rootsOption "cursor" // {
            example = [ "/home/alice/.cursor/projects" ];
          };
          # The sessions only: ~/.factory also holds Droid's settings,
          # MCP servers and credentials.
          droid = rootsOption "droid" // {
            example = [ "/home/alice/.factory/sessions" ];
          };
          # The threads only: ~/.local/share/amp also holds secrets.json.
          amp = rootsOption "amp" // {
            example = [ "/home/alice/.local/share/amp/threads" ];
          };
          # The sessions only: ~/.kimi also holds config.toml (API keys).
          kimi = rootsOption "kimi" // {
            example = [ "/home/alice/.kimi/sessions" ];
          };
          # Project folders holding .aider.chat.history.md (no default).
          aider = rootsOption "aider" // {
            example = [ "/home/alice/src/webapp" ];
          };
          # Project folders holding .crush/crush.db (no default).
          crush = rootsOption "crush" // {
            example = [ "/home/alice/src" ];
          };
          # The folder holding sessions.db.
          goose = rootsOption "goose" // {
            example = [ "/home/alice/.local/share/goose/sessions" ];
          };
          # The folder holding opencode.db (it also holds OpenCode's
          # auth.json: kato opens only the database and its -wal/-shm).
          opencode = rootsOption "opencode" // {
            example = [ "/home/alice/.local/share/opencode" ];
          };
        };
      };
      default = { };
      example = {
        claude = [ "/home/alice/.claude/projects" ];
        codex = [ "/home/alice/.codex/sessions" ];
        gemini = [ "/home/alice/.gemini/tmp" ];
        copilot = [ "/home/alice/.copilot/session-state" ];
        cline = [ "/home/alice/.config/Code/User/globalStorage/saoudrizwan.claude-dev/tasks" ];
        qwen = [ "/home/alice/.qwen/projects" ];
        cursor = [ "/home/alice/.cursor/projects" ];
        droid = [ "/home/alice/.factory/sessions" ];
        amp = [ "/home/alice/.local/share/amp/threads" ];
        kimi = [ "/home/alice/.kimi/sessions" ];
        aider = [ "/home/alice/src/webapp" ];
        opencode = [ "/home/alice/.local/share/opencode" ];
        crush = [ "/home/alice/src" ];
        goose = [ "/home/alice/.local/share/goose/sessions" ];
      };
      description = ''
        Session-log directories per provider. A provider with no roots is
        disabled. Each root is bound read-only into the service's namespace
        (a missing one is skipped and reported by `kato doctor`).
      '';
    };

    exportRoots = mkOption {
      type = types.listOf absolutePath;
      default = [ ];
      example = [ "/home/alice/notes/agents" ];
      description = ''
        Directories kato may write exports to (`[exports] allowed_roots`).
        Each is bound read-write into the service's namespace and must exist.
      '';
    };

    settings = mkOption {
      inherit (toml) type;
      default = { };
      example = {
        sandbox.mode = "enforce";
        exports.default_dir = "/home/alice/notes/agents";
        markdown.thinking = true;
      };
      description = ''
        Further kato configuration (`config.toml`), merged over what the
        options above generate. Unknown keys are errors: kato fails closed.
      '';
    };

    extraHardening = mkOption {
      type = types.attrsOf types.unspecified;
      default = { };
      example = {
        MemoryMax = "512M";
        TasksMax = 64;
      };
      description = ''
        Systemd service settings merged over the built-in hardening (which
        matches the upstream kato.service). Use it to add restrictions, or
        to relax one for a particular machine.
      '';
    };
  };

  config = mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];

    systemd.services.kato = {
      description = "kato, a sandboxed observer of coding-agent sessions";
      documentation = [ "https://example.invalid/kato/README.md" ];
      wantedBy = [ "multi-user.target" ];
      after = [ "local-fs.target" ];
      restartTriggers = [ configFile ];

      environment.KATO_CONFIG = "${configFile}";

      serviceConfig =
        hardening
        // {
          Type = "exec";
          ExecStart = "${lib.getExe cfg.package} run";
          Restart = "on-failure";
          RestartSec = "5s";
          TimeoutStopSec = "30s";
          SyslogIdentifier = "kato";

          DynamicUser = cfg.user == null;
          SupplementaryGroups = cfg.supplementaryGroups;
          ConfigurationDirectory = "kato";
          ConfigurationDirectoryMode = "0755";
          StateDirectory = "kato";
          StateDirectoryMode = "0700";
          RuntimeDirectory = "kato";
          RuntimeDirectoryMode = "0700";
          LogsDirectory = "kato";
          LogsDirectoryMode = "0700";

          BindReadOnlyPaths = map (p: "-${p}") providerRoots;
          BindPaths = cfg.exportRoots;
        }
        // lib.optionalAttrs (cfg.user != null) { User = cfg.user; }
        // cfg.extraHardening;
    };
  };
}
