#!powershell

# Apply or audit a compiled hardening baseline in one invocation (see win_rebuild_baseline.py).
# Each setting type has a Get (current value), a Test (compliant?) and a Set. A control is
# compliant when all its settings are. Remote-management cutting controls come last in the
# list. Controls are independent: one failing never holds back another (the action plugin
# fails the host at the end with every error); inside a control that can cut remote
# management, the first failing setting stops the settings after it (the WinRM allow rule
# comes before the default-block, so a failed rule never leaves inbound blocked).
# Compliance is read from what is in effect (effective firewall policy, running Device
# Guard services), never only from what was written.

#AnsibleRequires -CSharpUtil Ansible.Basic

$spec = @{
    options = @{
        controls = @{
            type = 'list'
            elements = 'dict'
            required = $true
            options = @{
                id = @{ type = 'str'; required = $true }
                title = @{ type = 'str'; default = '' }
                cuts_remote_management = @{ type = 'bool'; default = $false }
                reboot_required = @{ type = 'bool'; default = $false }
                requires = @{ type = 'str'; default = ''; choices = @('', 'virtualization_based_security') }
                remediation = @{ type = 'str'; default = 'auto'; choices = @('auto', 'manual') }
                settings = @{ type = 'list'; elements = 'dict'; required = $true }
            }
        }
        protected_accounts = @{ type = 'list'; elements = 'str'; required = $true }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$checkMode = $module.CheckMode
$protected = @($module.Params.protected_accounts | ForEach-Object { $_.ToLowerInvariant() })
$currentUser = [Security.Principal.WindowsIdentity]::GetCurrent().Name.Split('\')[-1].ToLowerInvariant()
$protected += $currentUser

$markerKey = 'HKLM:\SOFTWARE\GHAL\Rebuild\Harden'
# Restart-bound controls written since the last restart are listed in a volatile key: Windows
# keeps it in memory only and discards it at the next restart (RegCreateKeyEx REG_OPTION_VOLATILE),
# so its existence means "not restarted since". No boot time compared, no clock involved.
$pendingSubKey = 'SOFTWARE\GHAL\Rebuild\Harden\RestartPending'
$pendingKey = "HKLM:\$pendingSubKey"
$defaultHive = 'GHAL_RebuildDefaultUser'
$script:hiveLoaded = $false
$script:auditCache = $null
$script:seceditCache = $null

# ---------------------------------------------------------------- helpers

Function Invoke-NativeCommand {
    # Runs a console program and returns its exit code and text. In Windows PowerShell 5.1,
    # redirecting a native program's stderr (2>&1, 2>$null) wraps each stderr line in an
    # ErrorRecord, and under Ansible's $ErrorActionPreference = 'Stop' the first one is
    # terminating (about_Redirection, about_Preference_Variables). 'Continue' in this scope
    # only; the exit code decides success.
    param([string]$FilePath, [string[]]$Arguments)
    $ErrorActionPreference = 'Continue'
    $text = @(& $FilePath @Arguments 2>&1 | ForEach-Object { [string]$_ })
    return @{ rc = $LASTEXITCODE; output = ($text -join ' ').Trim() }
}

Function Mount-DefaultUserHive {
    if ($script:hiveLoaded) { return }
    # A run that died earlier may have left the hive loaded: use it, and unload it at the end.
    if (-not (Test-Path -LiteralPath "Registry::HKEY_USERS\$defaultHive")) {
        $r = Invoke-NativeCommand -FilePath reg.exe -Arguments @('load', "HKU\$defaultHive", "$env:SystemDrive\Users\Default\NTUSER.DAT")
        if ($r.rc -ne 0) { throw "cannot load the Default User hive (reg load exit $($r.rc): $($r.output))" }
    }
    $script:hiveLoaded = $true
}

Function Dismount-DefaultUserHive {
    # reg unload fails while any handle into the hive is open (RegUnLoadKey). Our RegistryKey
    # objects are closed after use; what the provider still holds is released by finalizers,
    # hence Collect + WaitForPendingFinalizers before each try. Returns $null or the error.
    $last = ''
    for ($try = 1; $try -le 5; $try++) {
        [GC]::Collect()
        [GC]::WaitForPendingFinalizers()
        [GC]::Collect()
        $r = Invoke-NativeCommand -FilePath reg.exe -Arguments @('unload', "HKU\$defaultHive")
        if ($r.rc -eq 0) { $script:hiveLoaded = $false; return $null }
        $last = "reg unload exit $($r.rc): $($r.output)"
        Start-Sleep -Milliseconds (400 * $try)
    }
    return "the Default User hive is still loaded as HKU\$defaultHive ($last); the next run reuses it, new profiles cannot copy NTUSER.DAT until it is unloaded"
}

Function Convert-RegistryPath {
    param([string]$Path)
    if ($Path.StartsWith('HKDU:\')) {
        # Check mode loads it too (reading is the only way to audit it) and unloads it the same way.
        Mount-DefaultUserHive
        return "Registry::HKEY_USERS\$defaultHive\" + $Path.Substring(6)
    }
    return $Path
}

Function Resolve-RegistryKeys {
    # Expands a `*` path segment to every existing subkey; a path without `*` is returned as is.
    param([string]$Path)
    $parts = $Path.Split('\')
    $paths = @($parts[0])
    for ($i = 1; $i -lt $parts.Length; $i++) {
        $next = @()
        foreach ($p in $paths) {
            if ($parts[$i] -eq '*') {
                if (Test-Path -LiteralPath $p) {
                    $next += @(Get-ChildItem -LiteralPath $p | ForEach-Object { "$p\$($_.PSChildName)"; $_.Close() })
                }
            }
            else {
                $next += "$p\$($parts[$i])"
            }
        }
        $paths = $next
    }
    return , $paths
}

Function ConvertTo-RegistryData {
    param([string]$ValueType, $Data)
    switch ($ValueType) {
        'dword' { return [BitConverter]::ToInt32([BitConverter]::GetBytes([uint32]$Data), 0) }
        'qword' { return [BitConverter]::ToInt64([BitConverter]::GetBytes([uint64]$Data), 0) }
        'multi_string' { return [string[]]@($Data) }
        default { return [string]$Data }
    }
}

Function Get-RegistryValue {
    param([string]$Path, [string]$Name, [string]$ValueType)
    $key = Get-Item -LiteralPath $Path -ErrorAction SilentlyContinue
    if ($null -eq $key) { return $null }
    try {
        if ($key.GetValueNames() -notcontains $Name) { return $null }
        $value = $key.GetValue($Name, $null, 'DoNotExpandEnvironmentNames')
    }
    finally { $key.Close() }  # an open handle into a loaded hive blocks reg unload
    switch ($ValueType) {
        'dword' { return [uint32][BitConverter]::ToUInt32([BitConverter]::GetBytes([int32]$value), 0) }
        'qword' { return [uint64][BitConverter]::ToUInt64([BitConverter]::GetBytes([int64]$value), 0) }
        'multi_string' { return , @($value) }
        default { return [string]$value }
    }
}

Function Test-Equal {
    param($Actual, $Expected)
    if ($null -eq $Actual) { return $false }
    if ($Expected -is [System.Collections.IList]) {
        return (@($Actual) -join "`n") -ceq (@($Expected) -join "`n")
    }
    return [string]$Actual -eq [string]$Expected
}

Function Get-AuditSetting {
    param([string]$Guid)
    if ($null -eq $script:auditCache) {
        $file = [IO.Path]::GetTempFileName()
        try {
            $r = Invoke-NativeCommand -FilePath auditpol.exe -Arguments @('/backup', "/file:$file")
            if ($r.rc -ne 0) { throw "auditpol /backup failed (exit $($r.rc)): $($r.output)" }
            $script:auditCache = @{}
            foreach ($row in (Import-Csv -LiteralPath $file)) {
                if ($row.'Subcategory GUID') { $script:auditCache[$row.'Subcategory GUID'.ToUpperInvariant()] = [int]$row.'Setting Value' }
            }
        }
        finally { Remove-Item -LiteralPath $file -Force -ErrorAction SilentlyContinue }
    }
    $value = $script:auditCache[$Guid.ToUpperInvariant()]
    if ($null -eq $value) { $value = 0 }
    return @('No Auditing', 'Success', 'Failure', 'Success and Failure')[$value]
}

Function Get-SeceditExport {
    if ($null -eq $script:seceditCache) {
        $file = [IO.Path]::GetTempFileName()
        try {
            $r = Invoke-NativeCommand -FilePath secedit.exe -Arguments @('/export', '/cfg', $file, '/areas', 'USER_RIGHTS', 'SECURITYPOLICY', '/quiet')
            if ($r.rc -ne 0) { throw "secedit /export failed (exit $($r.rc)): $($r.output)" }
            $script:seceditCache = @{}
            $section = ''
            foreach ($line in (Get-Content -LiteralPath $file -Encoding Unicode)) {
                if ($line -match '^\[(.+)\]$') { $section = $Matches[1]; $script:seceditCache[$section] = @{}; continue }
                if ($section -and $line -match '^\s*([^=]+?)\s*=\s*(.*)$') { $script:seceditCache[$section][$Matches[1]] = $Matches[2] }
            }
        }
        finally { Remove-Item -LiteralPath $file -Force -ErrorAction SilentlyContinue }
    }
    return $script:seceditCache
}

Function ConvertTo-SidMember {
    param([string]$Member)
    if ($Member.StartsWith('*')) { return $Member.ToUpperInvariant() }
    try {
        $sid = (New-Object Security.Principal.NTAccount $Member).Translate([Security.Principal.SecurityIdentifier]).Value
        return "*$sid"
    }
    catch { return $Member }
}

Function Invoke-SeceditConfigure {
    # One secedit /configure for every user right and security policy line of a control:
    # related values (lockout threshold, duration, reset) must land together.
    param([System.Collections.IDictionary]$Sections)
    $inf = [IO.Path]::GetTempFileName()
    $db = [IO.Path]::ChangeExtension([IO.Path]::GetTempFileName(), 'sdb')
    try {
        $text = @('[Unicode]', 'Unicode=yes', '[Version]', 'signature="$CHICAGO$"', 'Revision=1')
        foreach ($section in $Sections.Keys) {
            $text += "[$section]"
            $text += @($Sections[$section])
        }
        Set-Content -LiteralPath $inf -Value $text -Encoding Unicode
        $r = Invoke-NativeCommand -FilePath secedit.exe -Arguments @('/configure', '/db', $db, '/cfg', $inf, '/areas', 'USER_RIGHTS', 'SECURITYPOLICY', '/quiet')
        if ($r.rc -ne 0) { throw "secedit /configure failed (exit $($r.rc)): $($r.output)" }
    }
    finally {
        Remove-Item -LiteralPath $inf, $db -Force -ErrorAction SilentlyContinue
        $script:seceditCache = $null
    }
}

Function Get-AdsiGroup {
    param([string]$Sid)
    # The group's name is localised (Administrateurs, Administratoren): resolve it from the SID.
    $name = (New-Object Security.Principal.SecurityIdentifier $Sid).Translate([Security.Principal.NTAccount]).Value.Split('\')[-1]
    return [ADSI]"WinNT://$env:COMPUTERNAME/$name,group"
}

Function Get-GroupMembers {
    # Get-LocalGroupMember fails on a group holding an orphaned SID (a known cmdlet bug);
    # fall back to ADSI, which lists every member with its SID.
    param([string]$Sid)
    try { return @(Get-LocalGroupMember -SID $Sid -ErrorAction Stop) }
    catch {
        $group = Get-AdsiGroup -Sid $Sid
        $members = foreach ($item in @($group.Invoke('Members'))) {
            $entry = [ADSI]$item
            $memberSid = New-Object Security.Principal.SecurityIdentifier($entry.objectSid.Value, 0)
            $path = [string]$entry.Path
            $source = $(if ($path -like "WinNT://*/$env:COMPUTERNAME/*") { 'Local' } else { 'ActiveDirectory' })
            try { $display = $memberSid.Translate([Security.Principal.NTAccount]).Value }
            catch { $display = $memberSid.Value }
            [pscustomobject]@{ Name = $display; SID = $memberSid; PrincipalSource = $source }
        }
        return @($members)
    }
}

Function Test-Allowed {
    # A pattern `Name_*` names a per-user service: it matches the template (`cbdhsvc`) and
    # its per-logon instances (`cbdhsvc_<LUID in hex>`), as "Per-user services in Windows"
    # describes them; any other pattern is a -like glob.
    param([string]$Name, [string[]]$Patterns)
    foreach ($p in $Patterns) {
        if ($Name -like $p) { return $true }
        if ($p.EndsWith('_*') -and $Name -eq $p.Substring(0, $p.Length - 2)) { return $true }
    }
    return $false
}

Function Get-DeviceGuard {
    Get-CimInstance -Namespace 'root\Microsoft\Windows\DeviceGuard' -ClassName Win32_DeviceGuard -ErrorAction SilentlyContinue
}

Function Test-VbsCapable {
    # AvailableSecurityProperties: 1 = hypervisor support, 2 = Secure Boot (Win32_DeviceGuard).
    # RequirePlatformSecurityFeatures = 1 (the baseline) makes VBS start only with Secure Boot.
    $dg = Get-DeviceGuard
    return ($null -ne $dg -and @($dg.AvailableSecurityProperties) -contains 1 -and @($dg.AvailableSecurityProperties) -contains 2)
}

# ---------------------------------------------------------------- per setting type
# Each returns @{ before = ...; compliant = bool; apply = scriptblock } ; after is read again.

Function Get-SettingState {
    param($S)
    switch ($S.type) {
        'registry' {
            $paths = Resolve-RegistryKeys -Path (Convert-RegistryPath -Path $S.path)
            $values = [ordered]@{}
            foreach ($p in $paths) { $values[$p] = Get-RegistryValue -Path $p -Name $S.name -ValueType $S.value_type }
            $ok = $true
            foreach ($v in $values.Values) { if (-not (Test-Equal -Actual $v -Expected $S.data)) { $ok = $false } }
            if ($paths.Count -eq 1) { $shown = $values[$paths[0]] } else { $shown = $values }
            return @{ value = $shown; compliant = $ok }
        }
        'service' {
            $svc = Get-Service -Name $S.name -ErrorAction SilentlyContinue
            if ($null -eq $svc) {
                return @{ value = $null; compliant = ($S.start_mode -eq 'disabled'); missing = $true }
            }
            $mode = ([string]$svc.StartType).ToLowerInvariant()
            if ($mode -like 'automatic*') { $mode = 'automatic' }
            $state = ([string]$svc.Status).ToLowerInvariant()
            $ok = ($mode -eq $S.start_mode) -and ((-not $S.state) -or ($state -eq $S.state))
            return @{ value = @{ start_mode = $mode; state = $state }; compliant = $ok }
        }
        'feature' {
            $f = Get-WindowsOptionalFeature -Online -FeatureName $S.name -ErrorAction SilentlyContinue
            if ($null -eq $f) { return @{ value = $null; compliant = (-not $S.enabled); missing = $true } }
            $enabled = ([string]$f.State) -eq 'Enabled'
            return @{ value = $enabled; compliant = ($enabled -eq [bool]$S.enabled) }
        }
        'firewall_profile' {
            # ActiveStore: what is in effect (local store merged with Group Policy, GPO wins);
            # without it the cmdlet reads the local PersistentStore a GPO may override.
            $p = Get-NetFirewallProfile -Name $S.profile -PolicyStore ActiveStore
            $v = [ordered]@{
                enabled = ([string]$p.Enabled -eq 'True')
                default_inbound_action = [string]$p.DefaultInboundAction
                default_outbound_action = [string]$p.DefaultOutboundAction
                log_allowed = ([string]$p.LogAllowed -eq 'True')
                log_blocked = ([string]$p.LogBlocked -eq 'True')
                log_max_size_kb = [int]$p.LogMaxSizeKilobytes
            }
            $ok = $v.enabled -eq [bool]$S.enabled
            foreach ($k in 'default_inbound_action', 'default_outbound_action', 'log_allowed', 'log_blocked') {
                if ($S.ContainsKey($k) -and ([string]$v[$k] -ne [string]$S[$k])) { $ok = $false }
            }
            if ($S.ContainsKey('log_max_size_kb') -and $v.log_max_size_kb -lt [int]$S.log_max_size_kb) { $ok = $false }
            return @{ value = $v; compliant = $ok }
        }
        'firewall_rule' {
            $r = Get-NetFirewallRule -DisplayName $S.name -PolicyStore ActiveStore -ErrorAction SilentlyContinue | Select-Object -First 1
            if ($null -eq $r) { return @{ value = $null; compliant = $false } }
            $port = (Get-NetFirewallPortFilter -AssociatedNetFirewallRule $r)
            $v = [ordered]@{
                direction = $(if ([string]$r.Direction -eq 'Inbound') { 'in' } else { 'out' })
                protocol = ([string]$port.Protocol).ToLowerInvariant()
                local_port = [string]$port.LocalPort
                action = ([string]$r.Action).ToLowerInvariant()
                enabled = ([string]$r.Enabled -eq 'True')
            }
            $ok = ($v.direction -eq $S.direction) -and ($v.protocol -eq $S.protocol) -and ($v.local_port -eq [string]$S.local_port) -and ($v.action -eq $S.action) -and ($v.enabled -eq [bool]$S.enabled)
            return @{ value = $v; compliant = $ok }
        }
        'audit_policy' {
            $v = Get-AuditSetting -Guid $S.guid
            return @{ value = $v; compliant = ($v -eq $S.value) }
        }
        'user_right' {
            $exp = Get-SeceditExport
            $raw = $null
            if ($exp.ContainsKey('Privilege Rights')) { $raw = $exp['Privilege Rights'][$S.name] }
            $members = @()
            if ($raw) { $members = @($raw.Split(',') | ForEach-Object { ConvertTo-SidMember -Member $_.Trim() }) }
            $members = @($members | Sort-Object -Unique)
            $want = @($S.members | ForEach-Object { $_.ToUpperInvariant() } | Sort-Object -Unique)
            return @{ value = $members; compliant = (($members -join ',') -eq ($want -join ',')) }
        }
        'security_policy' {
            $exp = Get-SeceditExport
            $v = $null
            if ($exp.ContainsKey($S.section)) { $v = $exp[$S.section][$S.key] }
            return @{ value = $v; compliant = ([string]$v -eq [string]$S.value) }
        }
        'device_guard_running' {
            # In effect, not configured: SecurityServicesRunning lists 1 once Credential Guard
            # runs (after the restart that follows the policy), VirtualizationBasedSecurityStatus 2.
            $dg = Get-DeviceGuard
            $running = @()
            if ($null -ne $dg) { $running = @($dg.SecurityServicesRunning | ForEach-Object { [int]$_ }) }
            $v = [ordered]@{ security_services_running = $running; vbs_status = $(if ($dg) { [int]$dg.VirtualizationBasedSecurityStatus } else { 0 }) }
            return @{ value = $v; compliant = ($running -contains [int]$S.service -and $v.vbs_status -eq 2) }
        }
        'defender_status' {
            $status = Get-MpComputerStatus -ErrorAction Stop
            $v = $status.($S.property)
            return @{ value = $v; compliant = ([string]$v -eq [string]$S.expected) }
        }
        'local_user' {
            $u = Get-LocalUser | Where-Object { $_.SID.Value -match "-$($S.rid)$" } | Select-Object -First 1
            if ($null -eq $u) { return @{ value = $null; compliant = $true; missing = $true } }
            $v = [ordered]@{ name = $u.Name; enabled = [bool]$u.Enabled }
            $ok = $true
            if ($S.ContainsKey('name') -and $u.Name -ne $S.name) { $ok = $false }
            if ($S.ContainsKey('enabled') -and [bool]$u.Enabled -ne [bool]$S.enabled) { $ok = $false }
            return @{ value = $v; compliant = $ok; user = $u }
        }
        'group_members' {
            $members = @(Get-GroupMembers -Sid $S.group_sid)
            $names = @($members | ForEach-Object { $_.Name })
            $unknown = @()
            foreach ($m in $members) {
                $short = $m.Name.Split('\')[-1]
                $isLocal = $m.PrincipalSource -eq 'Local' -or $m.Name.StartsWith("$env:COMPUTERNAME\", 'OrdinalIgnoreCase')
                $allowed = @($S.allowed | Where-Object { $_ -eq $m.Name -or ($isLocal -and -not $_.Contains('\') -and $_ -eq $short) })
                if (-not $allowed -and $protected -notcontains $short.ToLowerInvariant()) { $unknown += $m }
            }
            return @{ value = $names; compliant = ($unknown.Count -eq 0); unknown = $unknown }
        }
        'service_allowlist' {
            $unknown = @(Get-Service | Where-Object {
                    -not (Test-Allowed -Name $_.Name -Patterns $S.allowed) -and ($_.StartType -ne 'Disabled' -or $_.Status -ne 'Stopped')
                })
            return @{ value = @($unknown | ForEach-Object { $_.Name } | Sort-Object); compliant = ($unknown.Count -eq 0); unknown = $unknown }
        }
        'task_allowlist' {
            $commands = @()
            if ($S.ContainsKey('allowed_commands')) { $commands = @($S.allowed_commands) }
            $unknown = @(Get-ScheduledTask | Where-Object { $_.State -ne 'Disabled' } | Where-Object {
                    $task = $_
                    $known = Test-Allowed -Name "$($task.TaskPath)$($task.TaskName)" -Patterns $S.allowed
                    if ($known -and $commands) {
                        foreach ($action in @($task.Actions)) {
                            # COM-handler actions carry no command line.
                            if ($action.Execute -and -not (Test-Allowed -Name "$($action.Execute) $($action.Arguments)".Trim() -Patterns $commands)) { $known = $false }
                        }
                    }
                    -not $known
                })
            return @{ value = @($unknown | ForEach-Object { "$($_.TaskPath)$($_.TaskName)" } | Sort-Object); compliant = ($unknown.Count -eq 0); unknown = $unknown }
        }
        default { throw "unknown setting type '$($S.type)'" }
    }
}

Function Set-Setting {
    # Makes one setting compliant. Returns $true when Windows needs a restart to enforce it.
    param($S, $State)
    switch ($S.type) {
        'registry' {
            $path = Convert-RegistryPath -Path $S.path
            $data = ConvertTo-RegistryData -ValueType $S.value_type -Data $S.data
            $kind = @{ dword = 'DWord'; qword = 'QWord'; string = 'String'; expand_string = 'ExpandString'; multi_string = 'MultiString' }[$S.value_type]
            foreach ($p in (Resolve-RegistryKeys -Path $path)) {
                if (-not (Test-Path -LiteralPath $p)) { $null = New-Item -Path $p -Force }
                $null = New-ItemProperty -LiteralPath $p -Name $S.name -PropertyType $kind -Value $data -Force
            }
        }
        'service' {
            if ($State.missing) { throw "service $($S.name) is not installed" }
            $mode = @{ automatic = 'Automatic'; manual = 'Manual'; disabled = 'Disabled' }[$S.start_mode]
            Set-Service -Name $S.name -StartupType $mode
            if ($S.state -eq 'running') { Start-Service -Name $S.name }
            elseif ($S.state -eq 'stopped' -or $S.start_mode -eq 'disabled') { Stop-Service -Name $S.name -Force }
        }
        'feature' {
            if ($State.missing) { throw "optional feature $($S.name) is not available on this edition" }
            if ($S.enabled) { $r = Enable-WindowsOptionalFeature -Online -FeatureName $S.name -NoRestart -All }
            else { $r = Disable-WindowsOptionalFeature -Online -FeatureName $S.name -NoRestart }
            return [bool]$r.RestartNeeded
        }
        'firewall_profile' {
            $p = @{ Name = $S.profile; Enabled = $(if ($S.enabled) { 'True' } else { 'False' }) }
            if ($S.ContainsKey('default_inbound_action')) { $p.DefaultInboundAction = $S.default_inbound_action }
            if ($S.ContainsKey('default_outbound_action')) { $p.DefaultOutboundAction = $S.default_outbound_action }
            if ($S.ContainsKey('log_allowed')) { $p.LogAllowed = $(if ($S.log_allowed) { 'True' } else { 'False' }) }
            if ($S.ContainsKey('log_blocked')) { $p.LogBlocked = $(if ($S.log_blocked) { 'True' } else { 'False' }) }
            if ($S.ContainsKey('log_max_size_kb')) { $p.LogMaxSizeKilobytes = [uint64]$S.log_max_size_kb }
            Set-NetFirewallProfile @p
        }
        'firewall_rule' {
            Get-NetFirewallRule -DisplayName $S.name -ErrorAction SilentlyContinue | Remove-NetFirewallRule
            $dir = $(if ($S.direction -eq 'in') { 'Inbound' } else { 'Outbound' })
            $act = $(if ($S.action -eq 'allow') { 'Allow' } else { 'Block' })
            $en = $(if ($S.enabled) { 'True' } else { 'False' })
            $null = New-NetFirewallRule -DisplayName $S.name -Direction $dir -Protocol $S.protocol.ToUpperInvariant() -LocalPort $S.local_port -Action $act -Enabled $en -Profile Any
        }
        'audit_policy' {
            $success = $(if ($S.value -in 'Success', 'Success and Failure') { 'enable' } else { 'disable' })
            $failure = $(if ($S.value -in 'Failure', 'Success and Failure') { 'enable' } else { 'disable' })
            $r = Invoke-NativeCommand -FilePath auditpol.exe -Arguments @('/set', "/subcategory:$($S.guid)", "/success:$success", "/failure:$failure")
            if ($r.rc -ne 0) { throw "auditpol /set failed for $($S.subcategory) (exit $($r.rc)): $($r.output)" }
            $script:auditCache = $null
        }
        'user_right' {
            Invoke-SeceditConfigure -Sections @{ 'Privilege Rights' = @("$($S.name) = $(@($S.members) -join ',')") }
        }
        'security_policy' {
            Invoke-SeceditConfigure -Sections @{ $S.section = @("$($S.key) = $($S.value)") }
        }
        'device_guard_running' {
            # Nothing to write: the registry settings of the control are the configuration,
            # the restart starts the service. Until then the control is pending a reboot.
            return $true
        }
        'defender_status' {
            throw "$($S.property) cannot be set on the host (Windows offers no supported local way); turn it on from the Defender portal, Intune or Configuration Manager"
        }
        'local_user' {
            if ($State.missing) { return $false }
            $u = $State.user
            if ($protected -contains $u.Name.ToLowerInvariant()) { throw "refusing to change protected account $($u.Name)" }
            if ($S.ContainsKey('name') -and $u.Name -ne $S.name) {
                if ($protected -contains $S.name.ToLowerInvariant()) { throw "refusing to rename an account to protected name $($S.name)" }
                Rename-LocalUser -InputObject $u -NewName $S.name
            }
            if ($S.ContainsKey('enabled')) {
                if ($S.enabled) { Enable-LocalUser -SID $u.SID } else { Disable-LocalUser -SID $u.SID }
            }
        }
        'group_members' {
            foreach ($m in $State.unknown) {
                try { Remove-LocalGroupMember -SID $S.group_sid -Member $m.SID -ErrorAction Stop }
                catch {
                    # Orphaned SIDs (deleted domain accounts) defeat the LocalAccounts cmdlets; ADSI removes them.
                    $group = Get-AdsiGroup -Sid $S.group_sid
                    $group.Remove("WinNT://$($m.SID.Value)")
                }
            }
        }
        'service_allowlist' {
            # One refused service (protected: Access is denied) must not spare the others.
            $refused = @()
            foreach ($svc in $State.unknown) {
                try {
                    Set-Service -Name $svc.Name -StartupType Disabled -ErrorAction Stop
                    if ($svc.Status -ne 'Stopped') { Stop-Service -Name $svc.Name -Force -ErrorAction Stop }
                }
                catch { $refused += "$($svc.Name) ($($_.Exception.Message))" }
            }
            if ($refused) { throw "could not disable: $($refused -join '; ')" }
        }
        'task_allowlist' {
            foreach ($t in $State.unknown) { $null = Disable-ScheduledTask -TaskPath $t.TaskPath -TaskName $t.TaskName }
        }
    }
    return $false
}

# ---------------------------------------------------------------- main

$pending = @()
$marker = Get-Item -LiteralPath $pendingKey -ErrorAction SilentlyContinue
if ($null -ne $marker) {
    $pending = @($marker.GetValue('Controls') | Where-Object { $_ })
    $marker.Close()
}

$results = [System.Collections.Generic.List[object]]@()
$anyChanged = $false
try {
    foreach ($control in $module.Params.controls) {
        $r = [ordered]@{
            id = $control.id; title = $control.title; changed = $false; compliant = $false
            before = [ordered]@{}; after = [ordered]@{}; error = $null; skipped = $false
            skip_reason = ''; not_applicable = $false; pending_reboot = $false; noncompliant = @()
        }
        $results.Add($r)
        try {
            if ($control.requires -eq 'virtualization_based_security' -and -not (Test-VbsCapable)) {
                $r.skipped = $true; $r.not_applicable = $true; $r.compliant = $true
                $r.skip_reason = 'hardware lacks virtualization-based security support with Secure Boot (the baseline requires Secure Boot for VBS)'
                continue
            }
            $states = @{}
            $nonCompliant = @()
            $waiting = $false
            foreach ($s in $control.settings) {
                $st = Get-SettingState -S $s
                $states[$s.key] = $st
                $r.before[$s.key] = $st.value
                if (-not $st.compliant) {
                    # Written earlier, starts with the restart still pending: nothing to do now.
                    if ($s.type -eq 'device_guard_running' -and $pending -contains $control.id) { $waiting = $true }
                    else { $nonCompliant += $s }
                }
            }
            $r.compliant = ($nonCompliant.Count -eq 0) -and -not $waiting
            $r.noncompliant = @($nonCompliant | ForEach-Object { $_.key })
            if ($nonCompliant.Count -eq 0 -or $checkMode) {
                foreach ($k in $r.before.Keys) { $r.after[$k] = $r.before[$k] }
                # Check mode: changed means "would change"; a manual control never would.
                if ($nonCompliant.Count -gt 0) { $r.changed = ($control.remediation -ne 'manual') }
                if ($control.reboot_required -and $pending -contains $control.id) { $r.pending_reboot = $true }
                continue
            }
            if ($control.remediation -eq 'manual') {
                foreach ($k in $r.before.Keys) { $r.after[$k] = $r.before[$k] }
                $r.error = 'not compliant and cannot be set on the host: ' + (($nonCompliant | ForEach-Object { $_.key }) -join ', ') + ' (manual remediation: Defender portal, Intune or Configuration Manager)'
                # An audit finding, not a failed change: it does not hold back the controls below.
                continue
            }
            $needsReboot = $control.reboot_required
            $errors = @()
            $secedit = @($nonCompliant | Where-Object { $_.type -in 'user_right', 'security_policy' })
            if ($secedit.Count -gt 1) {
                $sections = [ordered]@{}
                foreach ($s in $secedit) {
                    if ($s.type -eq 'user_right') { $section = 'Privilege Rights'; $line = "$($s.name) = $(@($s.members) -join ',')" }
                    else { $section = $s.section; $line = "$($s.key) = $($s.value)" }
                    if (-not $sections.Contains($section)) { $sections[$section] = @() }
                    $sections[$section] += $line
                }
                try { Invoke-SeceditConfigure -Sections $sections; $r.changed = $true }
                catch { $errors += "secedit: $($_.Exception.Message)" }
                $nonCompliant = @($nonCompliant | Where-Object { $_.type -notin 'user_right', 'security_policy' })
            }
            foreach ($s in $nonCompliant) {
                if ($errors -and $control.cuts_remote_management) {
                    $errors += "$($s.key): not applied, an earlier setting of this control failed and it can cut remote management"
                    continue
                }
                try {
                    if (Set-Setting -S $s -State $states[$s.key]) { $needsReboot = $true }
                    $r.changed = $true
                }
                catch { $errors += "$($s.key): $($_.Exception.Message)" }
            }
            $ok = $true
            foreach ($s in $control.settings) {
                $st = Get-SettingState -S $s
                $r.after[$s.key] = $st.value
                if (-not $st.compliant) {
                    $ok = $false
                    # In effect only after the restart the change asked for: pending, not failed.
                    if ($s.type -eq 'device_guard_running' -and $needsReboot) { continue }
                    if ($s.type -in 'firewall_profile', 'firewall_rule') {
                        if (-not ($errors | Where-Object { $_.StartsWith("$($s.key):") })) { $errors += "$($s.key): set locally but not in effect (ActiveStore): a Group Policy overrides it" }
                        continue
                    }
                    if (-not ($errors | Where-Object { $_.StartsWith("$($s.key):") })) { $errors += "$($s.key): still not compliant after setting it" }
                }
            }
            $r.compliant = $ok
            if ($r.changed) { $anyChanged = $true }
            if ($r.changed -and $needsReboot -and $pending -notcontains $control.id) { $pending += $control.id }
            if ($control.reboot_required -or $needsReboot) { $r.pending_reboot = ($pending -contains $control.id) }
            if ($errors) { $r.error = $errors -join '; ' }
        }
        catch {
            $r.error = $_.Exception.Message
        }
    }

    if (-not $checkMode -and $anyChanged -and $pending.Count -gt 0) {
        # The parent first, non-volatile: CreateSubKey makes every key it creates volatile, and a
        # volatile parent would refuse the stable keys other runs create under it.
        if (-not (Test-Path -LiteralPath $markerKey)) { $null = New-Item -Path $markerKey -Force }
        $key = [Microsoft.Win32.Registry]::LocalMachine.CreateSubKey($pendingSubKey, [Microsoft.Win32.RegistryKeyPermissionCheck]::ReadWriteSubTree, [Microsoft.Win32.RegistryOptions]::Volatile)
        $key.Close()
        $null = New-ItemProperty -LiteralPath $pendingKey -Name Controls -PropertyType MultiString -Value ([string[]]$pending) -Force
    }
}
finally {
    # Never throws: a hive that will not unload is a warning and a result field, the
    # controls' results are still returned.
    $unloadError = $null
    if ($script:hiveLoaded) { $unloadError = Dismount-DefaultUserHive }
}
if ($unloadError) {
    $module.Result.default_user_hive_error = $unloadError
    $module.Warn($unloadError)
}

$module.Result.controls = $results
$module.Result.changed = @($results | Where-Object { $_.changed }).Count -gt 0
$module.Result.pending_reboot = @($results | Where-Object { $_.pending_reboot }).Count -gt 0
$module.Result.summary = @{
    compliant = @($results | Where-Object { $_.compliant -and -not $_.error }).Count
    changed = @($results | Where-Object { $_.changed }).Count
    failed = @($results | Where-Object { $_.error }).Count
    skipped = @($results | Where-Object { $_.skipped -and -not $_.not_applicable }).Count
}
if ($module.DiffMode) {
    $module.Diff.before = @{}
    $module.Diff.after = @{}
    foreach ($r in $results) { $module.Diff.before[$r.id] = $r.before; $module.Diff.after[$r.id] = $r.after }
}
$module.ExitJson()
